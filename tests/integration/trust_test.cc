// Trusted links: real handoffd processes over loopback TCP with CURVE, and hand-driven peer
// connections (support/raw_peer.h) that try what an attacker or a buggy peer would: no key, an
// unknown key, a real key under another peer's name, messages numbered ahead, updates and
// controls for intents that are not theirs, intents out of every bound. Each is refused,
// logged and counted, nothing stored changes, and real traffic goes on.

#include <doctest/doctest.h>

#include <atomic>
#include <climits>
#include <fstream>
#include <sstream>
#include <zmq.hpp>

#include "base/intent_id.h"
#include "base/records.h"
#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/cluster.h"
#include "support/peer_messages.h"
#include "support/raw_peer.h"
#include "wire/agent_protocol.h"
#include "wire/peer_protocol.h"

namespace handoff::testing {
namespace {

constexpr const char* kRemote = "agent://acme/remote/worker";  // hosted by node-b
constexpr const char* kCee = "agent://acme/cee/worker";        // hosted by node-c
constexpr auto kWait = std::chrono::seconds(20);

Json StatusOf(const Daemon& d) {
  auto status = d.Connect()->NodeStatus();
  REQUIRE(status.ok());
  return *status;
}

Json PeerOf(const Json& status, const std::string& name) {
  for (const Json& p : status["peers"]) {
    if (p.value("name", "") == name) return p;
  }
  FAIL("no peer " << name << " in " << status.dump());
  return Json();
}

uint64_t Field(const Json& j, const char* key) { return j.value(key, uint64_t{0}); }

SendRequest Work(int64_t n, const char* to = kRemote) {
  return DoubleWork(n, to, std::chrono::seconds(5));
}

// Sends `count` intents from `origin` and checks that each completes with its result.
void SendAndComplete(Daemon& origin, int count, int64_t first = 0) {
  auto client = origin.Connect();
  for (int64_t i = first; i < first + count; ++i) {
    auto receipt = client->Send(Work(i));
    REQUIRE(receipt.ok());
    auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
    INFO("origin log:\n" << origin.Log());
    REQUIRE(done.ok());
    REQUIRE(done->status == IntentStatus::kCompleted);
    CHECK(done->result == Doubled(i));
  }
}

// An update that completes `id`, as its destination `from` would send it.
std::string CompletingUpdate(const std::string& from, uint64_t seq, const std::string& id) {
  wire::RemoteUpdate u = StatusUpdate(*IntentId::Parse(id), from, {IntentStatus::kCompleted}, 50);
  MsgWriter result;
  result.BeginMap();
  result.Field("forged", true);
  result.EndMap();
  u.result = result.Release();
  return UpdateFrame(from, seq, u);
}

std::vector<NodeSpec> ThreeNodes() {
  return {{"node-a", {}, ""},
          {"node-b", {"agent://acme/remote/*"}, ""},
          {"node-c", {"agent://acme/cee/*"}, ""}};
}

TEST_CASE("ConnectionsWithoutTheirOwnAdmittedKeyAreRefusedLoggedCountedAndChangeNothing") {
  TempDir dir;
  Cluster cluster(dir, ThreeNodes());
  cluster.StartAll();
  cluster.WaitConnected();
  AgentPool agents(cluster["node-b"], kRemote, 1);
  Daemon& b = cluster["node-b"];
  const std::string endpoint = cluster.peer_endpoint("node-b");
  const std::string b_key = cluster.key("node-b").public_key;
  CHECK(Field(StatusOf(b), "auth_failures") == 0);

  const IntentRecord forged = ForwardableIntent(kRemote, "node-a");
  zmq::context_t context;
  // No key at all: a plaintext DEALER claiming node-a's name.
  RawPeer plaintext(context, endpoint, nullptr, "", "node-a");
  // A well-formed CURVE client whose key nobody listed.
  const NodeKey stranger = MakeNodeKey(dir.Sub("stranger.key"));
  RawPeer unknown(context, endpoint, &stranger, b_key, "node-a");
  // node-c's real key, speaking as node-a (with and without node-a's routing id).
  const NodeKey& c_key = cluster.key("node-c");
  RawPeer named(context, endpoint, &c_key, b_key, "node-a");
  RawPeer unnamed(context, endpoint, &c_key, b_key);
  for (RawPeer* peer : {&plaintext, &unknown, &named, &unnamed}) {
    for (uint64_t seq = 1; seq <= 3; ++seq) peer->Send(IntentFrame("node-a", seq, forged));
    peer->Send(wire::EncodePeerPing("node-a", 7));
  }
  CHECK_FALSE(plaintext.Handshook(std::chrono::milliseconds(500)));
  CHECK_FALSE(unknown.Handshook(std::chrono::milliseconds(500)));
  CHECK(named.Handshook(kWait));  // the key is admitted; what it claims is not
  CHECK_FALSE(plaintext.NextAck(std::chrono::milliseconds(300)).has_value());
  CHECK_FALSE(named.NextAck(std::chrono::milliseconds(300)).has_value());

  // Counted: each kind of refusal, and the impersonation against the key's owner.
  Json status;
  CHECK(WaitFor(
      [&] {
        status = StatusOf(b);
        return Field(status, "auth_failures_unknown_key") >= 1 &&
               Field(status, "auth_failures_handshake") >= 1 &&
               Field(PeerOf(status, "node-c"), "auth_failures") >= 8;
      },
      kWait));
  INFO("status: " << status.dump() << "\nnode-b log:\n" << b.Log());
  CHECK(Field(status, "auth_failures") >=
        Field(status, "auth_failures_unknown_key") + Field(status, "auth_failures_handshake") + 8);
  CHECK(Field(status, "auth_failures_impersonation") >= 8);
  // Logged once per address and key, with the key and what to do.
  const std::string log = b.Log();
  CHECK(Occurrences(log, stranger.public_key) == 2);  // in the one line, twice: key and what to add
  CHECK(log.find("add this key to [[peers]] on node node-b") != std::string::npos);
  CHECK(log.find("a peer may speak only for itself") != std::string::npos);
  CHECK(log.find("refused a connection to the peer endpoint") != std::string::npos);
  CHECK(log.find(c_key.secret_key) == std::string::npos);
  CHECK(log.find(cluster.key("node-b").secret_key) == std::string::npos);
  // Nothing stored: the forged intent is unknown, nothing is queued.
  auto client = b.Connect();
  CHECK(client->Get(forged.id.ToString()).status().IsNotFound());
  CHECK(client->List(ListOptions{})->empty());
  // Real traffic goes on, numbered from 1 as if the forgeries never happened.
  SendAndComplete(cluster["node-a"], 5);
  CHECK(Field(PeerOf(StatusOf(b), "node-a"), "auth_failures") == 0);
  CHECK(StatusOf(b).value("public_key", "") == b_key);
  CHECK(StatusOf(b).dump().find(cluster.key("node-b").secret_key) == std::string::npos);
}

TEST_CASE("TheConnectingSideShowsAuthFailedWithWhatToDo") {
  TempDir dir;
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}});
  cluster.StartAll();
  cluster.WaitConnected();
  Daemon& b = cluster["node-b"];
  auto peer_entry = [&](const std::string& key) {
    std::ostringstream s;
    s << "[[peers]]\nname = \"node-b\"\nendpoint = \"" << cluster.peer_endpoint("node-b") << "\"\n";
    if (!key.empty()) s << "public_key = \"" << key << "\"\n";
    return s.str();
  };
  // node-x: its key is not listed on node-b.
  const NodeKey x_key = MakeNodeKey(dir.Sub("node-x.key"));
  Daemon x(
      dir, "node-x",
      "secret_key_file = \"" + x_key.file + "\"\n" + peer_entry(cluster.key("node-b").public_key));
  // node-y: listed nowhere, and it expects the wrong key of node-b (node-a's).
  Daemon y(dir, "node-y", peer_entry(cluster.key("node-a").public_key));
  // node-z: plaintext, against a CURVE node.
  Daemon z(dir, "node-z", "peer_security = \"none\"\n" + peer_entry(""));
  x.Start();
  y.Start();
  z.Start();

  struct Case {
    Daemon* daemon;
    const char* says;
  };
  for (const Case& c : {Case{&x, "add this key to [[peers]] on node node-b"},
                        Case{&y, "is probably not its key"}, Case{&z, "requires CURVE"}}) {
    Json peer;
    bool failed = WaitFor(
        [&] {
          peer = PeerOf(StatusOf(*c.daemon), "node-b");
          return peer.value("state", "") == "auth_failed";
        },
        kWait);
    INFO("peer: " << peer.dump() << "\nlog:\n" << c.daemon->Log());
    CHECK(failed);
    CHECK_FALSE(peer.value("connected", true));
    CHECK(Field(peer, "auth_failures") >= 1);
    CHECK(peer.value("auth_error", "").find(c.says) != std::string::npos);
    CHECK(c.daemon->Log().find(c.says) != std::string::npos);
    // The human form shows it too, not a link that is merely down.
    CommandResult text = c.daemon->Ctl({"status"});
    CHECK(text.exit_code == 0);
    CHECK(text.out.find("auth_failed") != std::string::npos);
  }
  // node-x's key reached node-b's ZAP handler, which names it; the other two failed earlier.
  CHECK(WaitFor([&] { return b.Log().find(x_key.public_key) != std::string::npos; }, kWait));
  Json status = StatusOf(b);
  CHECK(Field(status, "auth_failures_unknown_key") >= 1);
  CHECK(Field(status, "auth_failures_handshake") >= 2);
  // node-b's own links are fine.
  CHECK(PeerOf(status, "node-a").value("state", "") == "connected");

  // Once node-b lists node-x's key, node-x's link comes up by itself, though ZeroMQ gave up on
  // the refused connection: the link keeps trying.
  std::ofstream(b.config_path(), std::ios::app)
      << "[[peers]]\nname = \"node-x\"\nendpoint = \"tcp://127.0.0.1:1\"\npublic_key = \""
      << x_key.public_key << "\"\n";
  REQUIRE(b.Stop() == 0);
  b.Start();
  Json healed;
  CHECK(WaitFor(
      [&] {
        healed = PeerOf(StatusOf(x), "node-b");
        return healed.value("state", "") == "connected";
      },
      kWait));
  INFO(healed.dump());
  CHECK_FALSE(healed.contains("auth_error"));
  CHECK(x.Log().find("link to node-b: handshake succeeded") != std::string::npos);
}

TEST_CASE("AnImpostorsMessagesNumberedAheadCannotMakeRealIntentsVanish") {
  TempDir dir;
  Cluster cluster(dir, ThreeNodes());
  cluster.StartAll();
  cluster.WaitConnected();
  AgentPool agents(cluster["node-b"], kRemote, 2);
  const std::string endpoint = cluster.peer_endpoint("node-b");
  const std::string b_key = cluster.key("node-b").public_key;
  // Before node-a forwards anything, impostors number messages "from node-a" far ahead: were
  // they believed, node-b would take node-a's real messages 1..100 for retransmissions.
  zmq::context_t context;
  const NodeKey stranger = MakeNodeKey(dir.Sub("stranger.key"));
  RawPeer plaintext(context, endpoint, nullptr, "", "node-a");
  RawPeer unknown(context, endpoint, &stranger, b_key, "node-a");
  RawPeer with_c_key(context, endpoint, &cluster.key("node-c"), b_key, "node-a");
  for (RawPeer* impostor : {&plaintext, &unknown, &with_c_key}) {
    for (uint64_t seq = 1; seq <= 100; ++seq) {
      impostor->Send(IntentFrame("node-a", seq, ForwardableIntent(kRemote, "node-a")));
    }
  }
  CHECK(with_c_key.Handshook(kWait));
  CHECK(WaitFor([&] { return Field(StatusOf(cluster["node-b"]), "auth_failures") >= 100; }, kWait));
  // Now the real node-a forwards: every intent is delivered and completes.
  SendAndComplete(cluster["node-a"], 30);
  auto remote = cluster["node-b"].Connect();
  ListOptions all;
  all.limit = 1000;
  CHECK(remote->List(all)->size() == 30);  // the real ones, and no forged one
}

TEST_CASE("APeerMayTouchOnlyWhatIsItsOwn") {
  TempDir dir;
  // node-c is configured everywhere but not started: the test speaks as node-c, with its key,
  // as a compromised or buggy node-c would.
  Cluster cluster(dir, {{"node-a", {"agent://acme/aye/*"}, ""},
                        {"node-b", {"agent://acme/remote/*"}, ""},
                        {"node-c", {"agent://acme/cee/*"}, ""}});
  cluster["node-a"].Start();
  cluster["node-b"].Start();
  Daemon& a = cluster["node-a"];
  Daemon& b = cluster["node-b"];
  std::atomic<bool> release{false};  // the agent works until the forgeries are done
  AgentPool agents(b, kRemote, 1, [&](Task& task) -> Outcome {
    if (!task.Checkpoint({{"step", 1}}).ok()) return Outcome::Abandon();
    WaitFor([&] { return release.load(); }, std::chrono::seconds(30));
    return Outcome::Complete({{"real", true}});
  });
  // A real intent a -> b, delivered and being worked on.
  auto origin = a.Connect();
  auto receipt = origin->Send(Work(1));
  REQUIRE(receipt.ok());
  const std::string real = receipt->intent_id;
  REQUIRE(WaitFor(
      [&] {
        auto got = b.Connect()->Get(real);
        return got.ok() && got->status == IntentStatus::kInProgress;
      },
      kWait));

  zmq::context_t context;
  const NodeKey& c_key = cluster.key("node-c");
  RawPeer to_a(context, cluster.peer_endpoint("node-a"), &c_key, cluster.key("node-a").public_key);
  RawPeer to_b(context, cluster.peer_endpoint("node-b"), &c_key, cluster.key("node-b").public_key);
  // To node-a: an update completing an intent node-a forwarded to node-b, not to node-c.
  to_a.Send(CompletingUpdate("node-c", 1, real));
  // To node-a: an update for an intent that does not exist anywhere.
  to_a.Send(CompletingUpdate("node-c", 2, NewIntentId(1'700'000'000'000).ToString()));
  REQUIRE(to_a.WaitAcked("node-c", 2, kWait));
  // To node-b: a cancel for node-a's intent; then an intent for an address node-b's routes
  // give to node-a; then one claiming node-a as its origin.
  to_b.Send(ControlFrame("node-c", 1, real, "cancel"));
  const IntentRecord elsewhere = ForwardableIntent("agent://acme/aye/worker", "node-c");
  to_b.Send(IntentFrame("node-c", 2, elsewhere));
  const IntentRecord posing = ForwardableIntent(kRemote, "node-a");
  to_b.Send(IntentFrame("node-c", 3, posing));
  REQUIRE(to_b.WaitAcked("node-c", 3, kWait));

  // Refused and counted per peer; logged with the peer and the intent id.
  CHECK(Field(PeerOf(StatusOf(a), "node-c"), "refused") == 2);
  CHECK(Field(PeerOf(StatusOf(b), "node-c"), "refused") == 3);
  CHECK(a.Log().find("from node node-c (intent " + real + ")") != std::string::npos);
  CHECK(b.Log().find("from node node-c (intent " + real + ")") != std::string::npos);
  CHECK(b.Log().find("(intent " + elsewhere.id.ToString() + "): to_agent: ") != std::string::npos);
  CHECK(b.Log().find("(intent " + posing.id.ToString() + "): origin_node: ") != std::string::npos);
  // Nothing changed: the real intent runs on and completes with the real result, once, with
  // no forged event in its history; the forged intents were never stored.
  auto here = origin->Get(real);
  REQUIRE(here.ok());
  CHECK_FALSE(IsTerminal(here->status));
  release.store(true);
  auto done = origin->Wait(real, kWait);
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->result == Json{{"real", true}});
  auto events = origin->Events(real);
  REQUIRE(events.ok());
  for (const Event& e : *events) {
    CHECK(e.node != "node-c");
    CHECK(e.actor != "agent://acme/rogue/actor");
  }
  CHECK(b.Connect()->Get(elsewhere.id.ToString()).status().IsNotFound());
  CHECK(b.Connect()->Get(posing.id.ToString()).status().IsNotFound());
  CHECK(Field(StatusOf(b), "failed_commits") == 0);
}

TEST_CASE("ForwardedIntentsOutOfBoundsAreRefusedBackToTheirOriginAndLocalSendsGoOn") {
  // The test is node-c: it listens where node-b sends node-c's messages, and forwards to b.
  PlayedNodeC played;
  Daemon& b = played.b();
  RawPeerServer& c_server = played.c;
  RawPeer& to_b = played.to_b;

  IntentRecord long_origin = ForwardableIntent(kRemote, std::string(600, 'x'));
  IntentRecord long_lease = ForwardableIntent(kRemote, "node-c");
  long_lease.lease_ms = 100LL * 365 * 24 * 3600 * 1000;
  IntentRecord overflowing = ForwardableIntent(kRemote, "node-c");
  overflowing.retry_initial_ms = INT64_MAX;
  overflowing.retry_max_ms = INT64_MAX;
  IntentRecord fine = ForwardableIntent(kRemote, "node-c");
  const std::vector<std::pair<IntentRecord, std::string>> bad = {
      {long_origin, "origin_node"}, {long_lease, "lease_ms"}, {overflowing, "retry_initial_ms"}};
  uint64_t seq = 0;
  for (const auto& [record, field] : bad) to_b.Send(IntentFrame("node-c", ++seq, record));
  // In the same second, a local send on node-b is stored and completes.
  auto local = b.Connect();
  auto receipt = local->Send(Work(21));
  REQUIRE(receipt.ok());
  to_b.Send(IntentFrame("node-c", ++seq, fine));
  REQUIRE(to_b.WaitAcked("node-c", seq, kWait));
  auto done = local->Wait(receipt->intent_id, kWait);
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);

  // Each refusal comes back to its origin as a FAILED update naming the field.
  std::map<std::string, std::string> refusals;  // intent id -> error message
  while (refusals.size() < bad.size()) {
    auto msg = c_server.NextData("node-c", kWait);
    REQUIRE(msg.has_value());
    REQUIRE(msg->kind == wire::peer_kind::kUpdate);
    auto update = wire::ReadRemoteUpdate(*msg->body, msg->from);
    REQUIRE(update.ok());
    if (update->status != IntentStatus::kFailed) continue;  // `fine`'s lifecycle
    REQUIRE(update->error.has_value());
    CHECK(update->error->code == "rejected_by_node");
    refusals[update->id.ToString()] = update->error->message;
  }
  for (const auto& [record, field] : bad) {
    INFO("intent " << record.id.ToString());
    REQUIRE(refusals.count(record.id.ToString()) == 1);
    CHECK(refusals[record.id.ToString()].find(field + ": ") != std::string::npos);
    CHECK(local->Get(record.id.ToString()).status().IsNotFound());
  }
  // The acceptable one was stored and delivered; no batch failed.
  CHECK(WaitFor(
      [&] {
        auto got = local->Get(fine.id.ToString());
        return got.ok() && got->status == IntentStatus::kCompleted;
      },
      kWait));
  Json status = StatusOf(b);
  CHECK(Field(status, "failed_commits") == 0);
  CHECK(Field(PeerOf(status, "node-c"), "refused") == bad.size());
}

void Replace(const std::string& path, const std::string& from, const std::string& to) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  std::ofstream(path) << s;
}

TEST_CASE("AKeyRotationLosesNoIntent") {
  TempDir dir;
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}});
  cluster.StartAll();
  cluster.WaitConnected();
  Daemon& a = cluster["node-a"];
  Daemon& b = cluster["node-b"];
  AgentPool agents(b, kRemote, 2);
  const std::string old_key = cluster.key("node-b").public_key;
  auto sender = a.Connect();
  std::vector<std::pair<std::string, int64_t>> sent;
  auto send_some = [&](int64_t from) {
    for (int64_t i = from; i < from + 10; ++i) {
      auto receipt = sender->Send(Work(i));
      REQUIRE(receipt.ok());
      sent.emplace_back(receipt->intent_id, i);
    }
  };
  send_some(0);

  // 1. node-b makes a new key; node-a lists it beside the old one and restarts.
  const std::string new_file = dir.Sub("node-b.new.key");
  CommandResult keygen = Run({HandoffdPath(), "--keygen", new_file});
  REQUIRE(keygen.exit_code == 0);
  const std::string new_key = keygen.out.substr(0, keygen.out.find('\n'));
  REQUIRE(new_key.size() == 40);
  CHECK(keygen.out.find(new_key) == 0);
  Replace(a.config_path(), "public_key = \"" + old_key + "\"",
          "public_key = [\"" + old_key + "\", \"" + new_key + "\"]");
  REQUIRE(a.Stop() == 0);
  a.Start();
  sender = a.Connect();
  send_some(100);

  // 2. node-b switches to the new key and restarts; node-a finds it among the listed.
  Replace(b.config_path(), cluster.key("node-b").file, new_file);
  REQUIRE(b.Stop() == 0);
  b.Start();
  send_some(200);
  CHECK(WaitFor([&] { return PeerOf(StatusOf(a), "node-b").value("public_key", "") == new_key; },
                kWait));
  CHECK(StatusOf(b).value("public_key", "") == new_key);

  // 3. node-a drops the old key and restarts.
  Replace(a.config_path(), "[\"" + old_key + "\", \"" + new_key + "\"]", "\"" + new_key + "\"");
  REQUIRE(a.Stop() == 0);
  a.Start();
  sender = a.Connect();
  send_some(300);

  for (const auto& [id, n] : sent) {
    auto done = sender->Wait(id, std::chrono::seconds(60));
    INFO("intent " << id << "\nnode-a log:\n" << a.Log() << "\nnode-b log:\n" << b.Log());
    REQUIRE(done.ok());
    REQUIRE(done->status == IntentStatus::kCompleted);
    CHECK(done->result == Doubled(n));
  }
  // The old key is refused now.
  zmq::context_t context;
  NodeKey old{old_key, cluster.key("node-b").secret_key, ""};
  RawPeer stale(context, cluster.peer_endpoint("node-a"), &old, cluster.key("node-a").public_key);
  stale.Send(wire::EncodePeerPing("node-b", 1));
  CHECK_FALSE(stale.Handshook(std::chrono::seconds(1)));
}

TEST_CASE("PlaintextLinksWorkOnlyWhenAskedForAndWarnAtEveryStart") {
  TempDir dir;
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}}, "none");
  cluster.StartAll();
  cluster.WaitConnected();
  AgentPool agents(cluster["node-b"], kRemote, 1);
  SendAndComplete(cluster["node-a"], 5);
  for (const char* name : {"node-a", "node-b"}) {
    Json status = StatusOf(cluster[name]);
    CHECK(status.value("peer_security", "") == "none");
    CHECK_FALSE(status.contains("public_key"));
    CHECK(cluster[name].Log().find("peer links are neither encrypted nor authenticated") !=
          std::string::npos);
  }
  // Without keys, anyone who reaches the port may speak as a peer: an unknown name is still
  // refused, and so is a routing id that differs from the name a message claims.
  zmq::context_t context;
  RawPeer stranger(context, cluster.peer_endpoint("node-b"), nullptr, "", "node-x");
  stranger.Send(wire::EncodePeerPing("node-x", 1));
  RawPeer mismatched(context, cluster.peer_endpoint("node-b"), nullptr, "", "node-y");
  mismatched.Send(wire::EncodePeerPing("node-a", 1));
  bool counted =
      WaitFor([&] { return Field(StatusOf(cluster["node-b"]), "auth_failures") >= 2; }, kWait);
  INFO("node-b log:\n" << cluster["node-b"].Log() << StatusOf(cluster["node-b"]).dump());
  CHECK(counted);
  CHECK(cluster["node-b"].Log().find("from 'node-x' (routing id 'node-x'): not a configured "
                                     "peer") != std::string::npos);
  // A configured peer's name on someone else's connection is told apart, with what to do.
  CHECK(cluster["node-b"].Log().find("claiming to be from peer 'node-a' on a connection whose "
                                     "routing id is 'node-y': node-a is a configured peer") !=
        std::string::npos);
  CHECK(Occurrences(cluster["node-b"].Log(), "not a configured peer") == 1);
  // A restart warns again.
  REQUIRE(cluster["node-b"].Stop() == 0);
  cluster["node-b"].Start();
  CHECK(Occurrences(cluster["node-b"].Log(),
                    "peer links are neither encrypted nor authenticated") == 2);
}

}  // namespace
}  // namespace handoff::testing
