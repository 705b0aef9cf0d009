// Across hosts: real handoffd processes linked over loopback TCP, real agents, SIGKILL and
// SIGSTOP. The verdict comes from the agents' ledger and the origin's histories.

#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "handoff/client.h"
#include "storage/store.h"
#include "support/agent_pool.h"
#include "support/cluster.h"
#include "support/raw_peer.h"
#include "wire/peer_protocol.h"

namespace handoff::testing {
namespace {

constexpr const char* kRemote = "agent://acme/remote/worker";

SendRequest Work(int64_t n, const char* to = kRemote) {
  return DoubleWork(n, to, std::chrono::seconds(2));
}

std::vector<NodeSpec> TwoNodes() {
  return {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}};
}

// The origin's history of a forwarded intent: complete, in order, with where each event
// happened.
void CheckOriginHistory(Client& origin, const std::string& id) {
  auto events = origin.Events(id);
  REQUIRE(events.ok());
  INFO("intent " << id);
  REQUIRE(events->size() >= 7);
  uint32_t seq = 0;
  for (const Event& e : *events) {
    CHECK(e.seq == ++seq);
  }
  CHECK((*events)[0].event_type == "intent.created");
  CHECK((*events)[0].node == "node-a");
  CHECK((*events)[1].event_type == "intent.submitted");
  CHECK((*events)[2].event_type == "intent.received");
  CHECK((*events)[2].node == "node-b");
  CHECK(events->back().event_type == "intent.completed");
  CHECK(events->back().node == "node-b");
  int completed = 0;
  for (const Event& e : *events) completed += e.event_type == "intent.completed";
  CHECK(completed == 1);
}

// Runs `sender` sends to node-a in a thread while `disrupt` runs; returns every (id, n) whose
// send returned an id.
std::vector<std::pair<std::string, int64_t>> SendWhile(
    Daemon& origin, size_t total,
    const std::function<void(const std::function<size_t()>&)>& disrupt) {
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> acked;
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    ClientOptions options = origin.client_options();
    std::unique_ptr<Client> client;
    for (int64_t i = 0; !stop.load();) {
      if (!client) {
        auto c = Client::Connect(options);
        if (!c.ok()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // origin restarting
          continue;
        }
        client = std::move(c).value();
      }
      auto receipt = client->Send(Work(i));
      if (!receipt.ok()) {
        client.reset();
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      acked.emplace_back(receipt->intent_id, i++);
    }
  });
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  disrupt(count);
  REQUIRE(WaitFor([&] { return count() >= total; }, std::chrono::seconds(120)));
  stop.store(true);
  sender.join();
  return acked;
}

void CheckAllCompleted(Daemon& origin, Daemon& destination, AgentPool& agents,
                       const std::vector<std::pair<std::string, int64_t>>& acked) {
  auto client = origin.Connect();
  for (const auto& [id, n] : acked) {
    auto done = client->Wait(id, std::chrono::seconds(120));
    INFO("intent " << id << "\norigin log:\n" << origin.Log());
    REQUIRE(done.ok());
    REQUIRE(done->status == IntentStatus::kCompleted);
    CHECK(done->result == Doubled(n));
    CHECK(agents.Handled(id) >= 1);
  }
  for (const auto& [id, n] : acked) CheckOriginHistory(*client, id);
  // No intent duplicated at the destination: exactly the acked ones, once each.
  auto remote = destination.Connect();
  ListOptions all;
  all.limit = 10000;
  auto list = remote->List(all);
  REQUIRE(list.ok());
  CHECK(list->size() == acked.size());
}

TEST_CASE("AThousandIntentsAcrossNodesCompleteWithTheirWholeHistoryOnTheOrigin") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  AgentPool agents(cluster["node-b"], kRemote, 2);
  auto origin = cluster["node-a"].Connect();
  std::vector<std::string> ids;
  for (int64_t i = 0; i < 1000; ++i) {
    auto receipt = origin->Send(Work(i));
    REQUIRE(receipt.ok());
    ids.push_back(receipt->intent_id);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    auto done = origin->Wait(ids[i], std::chrono::seconds(60));
    REQUIRE(done.ok());
    REQUIRE(done->status == IntentStatus::kCompleted);
    CHECK(done->result == Doubled(static_cast<int64_t>(i)));
    CHECK(done->target_node == "node-b");
    CHECK(done->origin_node == "node-a");
  }
  for (size_t i = 0; i < ids.size(); i += 50) CheckOriginHistory(*origin, ids[i]);
  // The destination answers get too.
  auto there = cluster["node-b"].Connect()->Get(ids[0]);
  REQUIRE(there.ok());
  CHECK(there->status == IntentStatus::kCompleted);
  CHECK(there->origin_node == "node-a");

  auto status = origin->NodeStatus();
  REQUIRE(status.ok());
  const Json& peer = (*status)["peers"][0];
  CHECK(peer["name"] == "node-b");
  CHECK(peer["connected"] == true);
  CHECK(peer["last_heard_at"].get<int64_t>() > 0);
  CHECK(peer.contains("retransmissions"));
  auto text = cluster["node-a"].Ctl({"status"});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("peer:") != std::string::npos);
  CHECK(text.out.find("node-b connected") != std::string::npos);
  CHECK(WaitFor(
      [&] {
        auto s = origin->NodeStatus();
        return s.ok() && (*s)["peers"][0]["outbox_depth"] == 0;
      },
      std::chrono::seconds(10)));
}

TEST_CASE("TheDestinationKilledSeveralTimesLosesAndDuplicatesNothing") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  AgentPool agents(cluster["node-b"], kRemote, 2);
  // Each kill comes while intents flow both ways: some handled by the agents, more in flight.
  // Each waits until node-a has seen node-b's current run (an ack with its boot): two
  // restarts within one heartbeat would look like one to it.
  auto ups = [&] { return Occurrences(cluster["node-a"].Log(), "link to node-b is up"); };
  auto acked = SendWhile(cluster["node-a"], 400, [&](const std::function<size_t()>&) {
    size_t restarts = 0;
    for (size_t handled : {50u, 150u, 250u}) {
      REQUIRE(WaitFor([&] { return agents.Distinct() >= handled; }, std::chrono::seconds(60)));
      REQUIRE(WaitFor([&] { return ups() >= 1 + restarts; }, std::chrono::seconds(30)));
      cluster["node-b"].Kill();
      cluster["node-b"].Start();
      ++restarts;
    }
  });
  CheckAllCompleted(cluster["node-a"], cluster["node-b"], agents, acked);
  // The destination really went away three times and the link came back each time.
  CHECK(Occurrences(cluster["node-b"].Log(), "handoffd 0.1.0 node=node-b") == 4);
  INFO("node-a log:\n" << cluster["node-a"].Log());
  CHECK(WaitFor([&] { return ups() >= 4; }, std::chrono::seconds(30)));
}

TEST_CASE("TheOriginKilledSeveralTimesLosesAndDuplicatesNothing") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  AgentPool agents(cluster["node-b"], kRemote, 2);
  auto acked = SendWhile(cluster["node-a"], 400, [&](const std::function<size_t()>&) {
    for (size_t handled : {50u, 150u, 250u}) {
      REQUIRE(WaitFor([&] { return agents.Distinct() >= handled; }, std::chrono::seconds(60)));
      cluster["node-a"].Kill();
      cluster["node-a"].Start();
    }
  });
  CheckAllCompleted(cluster["node-a"], cluster["node-b"], agents, acked);
  CHECK(Occurrences(cluster["node-a"].Log(), "handoffd 0.1.0 node=node-a") == 4);
}

TEST_CASE("AStalledDestinationOnlyDelaysAndRetransmissionsAreAbsorbed") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  cluster.WaitConnected();
  AgentPool agents(cluster["node-b"], kRemote, 2);
  auto origin = cluster["node-a"].Connect();
  std::vector<std::pair<std::string, int64_t>> acked;
  for (int64_t i = 0; i < 50; ++i) {
    auto receipt = origin->Send(Work(i));
    REQUIRE(receipt.ok());
    acked.emplace_back(receipt->intent_id, i);
  }
  cluster["node-b"].Signal(SIGSTOP);
  for (int64_t i = 50; i < 150; ++i) {
    auto receipt = origin->Send(Work(i));
    REQUIRE(receipt.ok());
    acked.emplace_back(receipt->intent_id, i);
  }
  // Past the heartbeat (3 x 200 ms) and several retransmission timeouts.
  REQUIRE(WaitFor(
      [&] {
        auto s = origin->NodeStatus();
        return s.ok() && (*s)["peers"][0]["connected"] == false &&
               (*s)["peers"][0]["retransmissions"].get<int64_t>() > 0;
      },
      std::chrono::seconds(20)));
  auto stalled = origin->NodeStatus();
  REQUIRE(stalled.ok());
  CHECK((*stalled)["peers"][0]["outbox_depth"].get<int64_t>() > 0);
  CHECK((*stalled)["peers"][0].contains("oldest_pending_age_ms"));
  cluster["node-b"].Signal(SIGCONT);
  CheckAllCompleted(cluster["node-a"], cluster["node-b"], agents, acked);
}

TEST_CASE("APeerDownDuringEverySendGetsEverythingWhenItStarts") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster["node-a"].Start();
  auto origin = cluster["node-a"].Connect();
  std::vector<std::pair<std::string, int64_t>> acked;
  for (int64_t i = 0; i < 100; ++i) {
    auto receipt = origin->Send(Work(i));
    REQUIRE(receipt.ok());
    acked.emplace_back(receipt->intent_id, i);
  }
  auto waiting = origin->NodeStatus();
  REQUIRE(waiting.ok());
  CHECK((*waiting)["peers"][0]["connected"] == false);
  CHECK((*waiting)["peers"][0]["outbox_depth"] == 100);
  // The origin restarts while the peer is still away: the outbox survives.
  cluster["node-a"].Kill();
  cluster["node-a"].Start();
  cluster["node-b"].Start();
  AgentPool agents(cluster["node-b"], kRemote, 2);
  CheckAllCompleted(cluster["node-a"], cluster["node-b"], agents, acked);
}

TEST_CASE("AnIntentCanceledAndPurgedWhileItsPeerIsAwayStillReachesItWhole") {
  // The origin stores a forwarded payload once, as the intent's blob, and the message that
  // forwards it without; purging the intent while that message waits must not leave the
  // message without its payload.
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster["node-a"].Start();
  auto origin = cluster["node-a"].Connect();
  SendRequest big = Work(8);
  big.payload["text"] = std::string(3000, 'p');
  auto kept = origin->Send(Work(7));
  auto gone = origin->Send(big);
  REQUIRE(kept.ok());
  REQUIRE(gone.ok());
  REQUIRE(origin->Cancel(gone->intent_id, "changed my mind").ok());
  REQUIRE(origin->Purge(gone->intent_id).ok());
  CHECK(origin->Get(gone->intent_id).status().IsNotFound());
  // Restarted with the message rewritten in its store, then the peer comes.
  cluster["node-a"].Kill();
  cluster["node-a"].Start();
  cluster["node-b"].Start();
  auto remote = cluster["node-b"].Connect();
  REQUIRE(WaitFor(
      [&] {
        auto at_b = remote->Get(gone->intent_id);
        return at_b.ok() && at_b->status == IntentStatus::kCanceled;
      },
      std::chrono::seconds(30)));
  auto at_b = remote->Get(gone->intent_id);
  REQUIRE(at_b.ok());
  CHECK(at_b->payload == big.payload);
  AgentPool agents(cluster["node-b"], kRemote, 1);
  origin = cluster["node-a"].Connect();
  auto done = origin->Wait(kept->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->result == Doubled(7));
  CHECK(cluster["node-a"].Log().find("reading the outbox") == std::string::npos);
}

TEST_CASE("AForwardWhosePayloadTheDiskLostHoldsItsLinkAndIsReportedNotSentWithout") {
  // A damaged store: the payload blob of a forwarded intent is gone while its message waits.
  // The origin still starts; the link sends what lies before it, and reports the damage about
  // once a second rather than spinning on it.
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster["node-a"].Start();
  auto origin = cluster["node-a"].Connect();
  auto first = origin->Send(Work(1));
  auto damaged = origin->Send(Work(2));
  REQUIRE(first.ok());
  REQUIRE(damaged.ok());
  REQUIRE(cluster["node-a"].Stop() == 0);
  {
    auto store = storage::Store::Open(cluster["node-a"].data_dir(), {}, "node-a");
    REQUIRE(store.ok());
    auto txn = (*store)->BeginWrite();
    REQUIRE(txn.ok());
    auto id = IntentId::Parse(damaged->intent_id);
    REQUIRE(id.ok());
    auto blobs = txn->OpenTable(storage::kBlobsTable);
    REQUIRE(blobs.ok());
    std::string key(id->bytes());
    key.push_back(static_cast<char>(storage::BlobKind::kPayload));
    REQUIRE(txn->Delete(*blobs, key).ok());
    REQUIRE(txn->Commit().ok());
  }
  cluster["node-a"].Start();
  cluster["node-b"].Start();
  AgentPool agents(cluster["node-b"], kRemote, 1);
  origin = cluster["node-a"].Connect();
  auto done = origin->Wait(first->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->result == Doubled(1));
  const std::string marker = "reading the outbox at message 2";
  REQUIRE(WaitFor([&] { return cluster["node-a"].Log().find(marker) != std::string::npos; },
                  std::chrono::seconds(30)));
  const auto since = std::chrono::steady_clock::now();
  auto count = [&] {
    const std::string log = cluster["node-a"].Log();
    size_t n = 0;
    for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) ++n;
    return n;
  };
  const size_t before = count();
  REQUIRE(WaitFor([&] { return count() >= before + 2; }, std::chrono::seconds(30)));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  CHECK(seconds >= 1.0);  // two more reports took at least one retry period
  CHECK(cluster["node-a"].Log().find(damaged->intent_id) != std::string::npos);
  auto remote = cluster["node-b"].Connect();
  CHECK(remote->Get(damaged->intent_id).status().IsNotFound());
}

TEST_CASE("AChainAToBToCCarriesParentAndCorrelationAndTheResultFlowsBack") {
  TempDir dir;
  Cluster cluster(dir, {{"node-a", {}, ""},
                        {"node-b", {"agent://acme/b/*"}, ""},
                        {"node-c", {"agent://acme/c/*"}, ""}});
  cluster.StartAll();
  AgentPool at_c(cluster["node-c"], "agent://acme/c/enricher", 1, [](Task& task) {
    return Outcome::Complete(Json{{"enriched", task.payload()["value"].get<int64_t>() * 10}});
  });
  std::string child_id;
  std::mutex mu;
  AgentPool at_b(cluster["node-b"], "agent://acme/b/planner", 1, [&](Task& task) {
    auto client = Client::Connect(cluster["node-b"].client_options());
    if (!client.ok()) return Outcome::Fail("no_daemon", client.status().message(), true);
    SendRequest child;
    child.to_agent = "agent://acme/c/enricher";
    child.from_agent = "agent://acme/b/planner";
    child.intent_type = "intent.enrich.v1";
    child.payload = {{"value", task.payload()["value"]}};
    child.parent_id = task.intent_id();
    child.correlation_id = task.intent().correlation_id;
    auto sent = (*client)->Send(child);
    if (!sent.ok()) return Outcome::Fail("send_failed", sent.status().message(), true);
    {
      std::lock_guard<std::mutex> lock(mu);
      child_id = sent->intent_id;
    }
    auto done = (*client)->Wait(sent->intent_id, std::chrono::seconds(60));
    if (!done.ok()) return Outcome::Fail("wait_failed", done.status().message(), true);
    return Outcome::Complete(Json{{"planned", true}, {"from_c", done->result}});
  });

  auto origin = cluster["node-a"].Connect();
  SendRequest req;
  req.to_agent = "agent://acme/b/planner";
  req.from_agent = "agent://acme/a/analyst";
  req.intent_type = "intent.plan.v1";
  req.payload = {{"value", 7}};
  req.correlation_id = "case-2026-11";
  auto receipt = origin->Send(req);
  REQUIRE(receipt.ok());
  auto done = origin->Wait(receipt->intent_id, std::chrono::seconds(60));
  REQUIRE(done.ok());
  REQUIRE(done->status == IntentStatus::kCompleted);
  CHECK(done->result["from_c"]["enriched"] == 70);
  CHECK(done->result["planned"] == true);

  std::lock_guard<std::mutex> lock(mu);
  auto child = cluster["node-b"].Connect()->Get(child_id);  // node-b is the child's origin
  REQUIRE(child.ok());
  CHECK(child->parent_id == receipt->intent_id);
  CHECK(child->correlation_id == "case-2026-11");
  CHECK(child->origin_node == "node-b");
  CHECK(child->target_node == "node-c");
  CHECK(child->status == IntentStatus::kCompleted);
  auto child_events = cluster["node-b"].Connect()->Events(child_id);
  REQUIRE(child_events.ok());
  CHECK(child_events->back().node == "node-c");
}

TEST_CASE("CancelOnTheOriginReachesTheRunningAgentAndALateCompleteIsRefused") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  std::atomic<bool> started{false};
  std::atomic<bool> saw_cancel{false};
  std::atomic<bool> tried_late{false};
  Status late;
  std::mutex mu;
  AgentPool agents(cluster["node-b"], kRemote, 1, [&](Task& task) {
    started.store(true);
    // Heartbeats go out every third of the 600 ms lease; one of them learns of the cancel.
    WaitFor([&] { return task.canceled(); }, std::chrono::seconds(30));
    saw_cancel.store(task.canceled());
    auto client = Client::Connect(cluster["node-b"].client_options());
    if (client.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      late = (*client)->Complete(task.intent_id(), task.attempt(), Json("too late"));
    }
    tried_late.store(true);
    return Outcome::Abandon();
  });
  auto origin = cluster["node-a"].Connect();
  SendRequest req = Work(1);
  req.lease = std::chrono::milliseconds(600);
  auto receipt = origin->Send(req);
  REQUIRE(receipt.ok());
  REQUIRE(WaitFor([&] { return started.load(); }, std::chrono::seconds(20)));
  auto canceled = origin->Cancel(receipt->intent_id, "no longer needed");
  REQUIRE(canceled.ok());
  REQUIRE(WaitFor([&] { return tried_late.load(); }, std::chrono::seconds(20)));
  CHECK(saw_cancel.load());
  std::lock_guard<std::mutex> lock(mu);
  CHECK(late.IsCancelled());
  CHECK(late.message().find("canceled") != std::string::npos);
  auto there = cluster["node-b"].Connect()->Get(receipt->intent_id);
  REQUIRE(there.ok());
  CHECK(there->status == IntentStatus::kCanceled);
  auto here = origin->Get(receipt->intent_id);
  REQUIRE(here.ok());
  CHECK(here->status == IntentStatus::kCanceled);
  CHECK(here->result.is_null());
}

TEST_CASE("MalformedAndUnknownPeerMessagesAreLoggedAndDropped") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  AgentPool agents(cluster["node-b"], kRemote, 1);
  auto origin = cluster["node-a"].Connect();
  const std::string peer_endpoint = cluster.peer_endpoint("node-a");
  const std::string a_key = cluster.key("node-a").public_key;

  // What a buggy node-b might send, on a connection authenticated with node-b's key.
  zmq::context_t context;
  RawPeer buggy(context, peer_endpoint, &cluster.key("node-b"), a_key);
  wire::PeerMessageBuilder forged(wire::peer_kind::kUpdate, "node-b", 1);
  forged.w().Field("intent_id", "not-a-uuid");
  buggy.Send("garbage that is not msgpack");
  buggy.Send("");
  buggy.Send(std::vector<std::string>{"a", "b"});
  buggy.Send(wire::EncodePeerPing("intruder", 1));  // another name than its key's
  MsgWriter bogus;  // a well-formed message of a kind no version defines
  bogus.BeginMap();
  bogus.Field("v", uint64_t{1});
  bogus.Field("kind", "bogus");
  bogus.Field("from", "node-b");
  bogus.EndMap();
  buggy.Send(bogus.str());
  CHECK(buggy.Handshook(std::chrono::seconds(10)));

  // Still serving, still forwarding; the drops are in the log, once each per minute.
  for (int64_t i = 0; i < 20; ++i) {
    auto receipt = origin->Send(Work(i));
    REQUIRE(receipt.ok());
    auto done = origin->Wait(receipt->intent_id, std::chrono::seconds(30));
    REQUIRE(done.ok());
    CHECK(done->status == IntentStatus::kCompleted);
  }
  Daemon& a = cluster["node-a"];
  CHECK(WaitFor([&] { return Occurrences(a.Log(), "a peer may speak only for itself") == 1; },
                std::chrono::seconds(10)));
  CHECK(WaitFor([&] { return Occurrences(a.Log(), "dropped a malformed message") == 1; },
                std::chrono::seconds(10)));
  CHECK(WaitFor([&] { return Occurrences(a.Log(), "dropped a 2-frame message") == 1; },
                std::chrono::seconds(10)));
  CHECK(a.running());
}

TEST_CASE("APeerSlowToAcknowledgeOnAConnectionThatStaysUpIsNotSentCopies") {
  TempDir dir;
  Cluster cluster(dir, {{"node-b", {}, ""}, {"node-c", {"agent://acme/cee/*"}, ""}});
  Daemon& b = cluster["node-b"];
  b.Start();
  zmq::context_t context;
  RawPeerServer c(context, cluster.peer_endpoint("node-c"), &cluster.key("node-c"), true);
  auto sender = b.Connect();
  auto link = [&] {
    auto status = sender->NodeStatus();
    REQUIRE(status.ok());
    return (*status)["peers"][0];
  };
  auto intents = [&](size_t n) {
    size_t got = 0;
    while (got < n) {
      auto msg = c.NextData("node-c", std::chrono::seconds(20));
      REQUIRE(msg.has_value());
      got += msg->kind == wire::peer_kind::kIntent;
    }
  };
  constexpr const char* kCee = "agent://acme/cee/worker";
  // The link comes up: node-c acknowledges the first intent at once.
  REQUIRE(sender->Send(Work(0, kCee)).ok());
  intents(1);
  REQUIRE(WaitFor([&] { return link()["connected"].get<bool>(); }, std::chrono::seconds(10)));

  // node-c falls behind: it takes ten more and acknowledges none of them for longer than three
  // heartbeats, so node-b calls the link down. The ZeroMQ connection stays up all along (node-c's
  // I/O thread answers its heartbeats): what node-b sent is on its way.
  c.HoldAcks(true);
  for (int64_t i = 1; i <= 10; ++i) REQUIRE(sender->Send(Work(i, kCee)).ok());
  intents(10);
  REQUIRE(WaitFor([&] { return !link()["connected"].get<bool>(); }, std::chrono::seconds(10)));

  // A late ack of five: the link is up again, and the other five are not sent again.
  const uint64_t first = 1;  // the seq of the intent acknowledged at once
  c.Ack("node-c", first + 5);
  REQUIRE(WaitFor([&] { return link()["connected"].get<bool>(); }, std::chrono::seconds(10)));
  c.Ack("node-c", first + 10);
  CHECK(WaitFor([&] { return link()["outbox_depth"].get<uint64_t>() == 0; },
                std::chrono::seconds(10)));
  CHECK_FALSE(c.NextData("node-c", std::chrono::milliseconds(500)).has_value());
  CHECK(c.duplicates() == 0);
  CHECK(link()["retransmissions"].get<uint64_t>() == 0);
  CHECK(link()["sent"].get<uint64_t>() == 11);
  CHECK(b.Log().find("link to node-c is up after") != std::string::npos);
  CHECK(b.Log().find("5 message(s) unacknowledged, on their way") != std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
