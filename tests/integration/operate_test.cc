// Operating a node: agent presence (`handoffctl agents`) with receivers that die, and the kill
// switch (`pause` / `resume`) across a restart of the daemon and across a peer link.

#include <doctest/doctest.h>

#include <csignal>
#include <nlohmann/json.hpp>
#include <string>

#include "handoff/client.h"
#include "support/cluster.h"
#include "support/daemon.h"

namespace handoff::testing {
namespace {

constexpr const char* kWorker = "agent://acme/ops/worker";

std::unique_ptr<Process> StartServe(const Daemon& daemon, const TempDir& dir, const char* as,
                                    const std::string& log) {
  return std::make_unique<Process>(
      std::vector<std::string>{HandoffctlPath(), "serve", "--as", as, "--exec", "cat"},
      daemon.Env(), dir.Sub(log));
}

// `handoffctl agents --json`'s row for `address`, or null when it lists none.
Json AgentRow(const Daemon& daemon, const std::string& address) {
  CommandResult r = daemon.Ctl({"agents", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  Json all = Json::parse(r.out);
  for (const Json& row : all["agents"]) {
    if (row["address"] == address) return row;
  }
  return Json();
}

SendRequest Work(int n, const std::string& to = kWorker) {
  SendRequest req;
  req.to_agent = to;
  req.intent_type = "intent.ops.work.v1";
  req.payload = {{"n", n}};
  return req;
}

TEST_CASE("AgentsListsLiveReceiversAndForgetsOneThatWasKilled") {
  // Over the stream socket a killed agent's connection closes, and the daemon forgets it at
  // once (receiver_timeout is an hour); over ZeroMQ only its silence tells.
  bool stream = true;
  std::string extra = "receiver_timeout = \"1h\"";
  SUBCASE("stream") {}
  SUBCASE("zeromq") {
    stream = false;
    extra = "receiver_timeout = \"2s\"\nagent_stream = false";
  }
  CAPTURE(stream);
  TempDir dir;
  Daemon daemon(dir, "node-a", extra);
  daemon.Start();
  auto first = StartServe(daemon, dir, kWorker, "serve1.log");
  auto second = StartServe(daemon, dir, kWorker, "serve2.log");
  REQUIRE(WaitFor(
      [&] {
        Json row = AgentRow(daemon, kWorker);
        return row.is_object() && row["receivers"] == 2;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100)));
  Json row = AgentRow(daemon, kWorker);
  CHECK(row["credit"] == 2);
  CHECK(row["in_flight"] == 0);
  CHECK(row["queued"] == 0);
  CHECK(row["paused"] == false);
  CHECK(row["last_heard"].is_string());
  CHECK(row["idle_seconds"].get<double>() < 10.0);
  CHECK(row["connections"].size() == 2);
  // The text form names the address and its receivers.
  CommandResult text = daemon.Ctl({"agents"});
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("RECEIVERS") != std::string::npos);
  CHECK(text.out.find(kWorker) != std::string::npos);

  // Killed without a word: the daemon forgets it once it has been silent for the timeout.
  first->Kill();
  REQUIRE(WaitFor([&] { return AgentRow(daemon, kWorker)["receivers"] == 1; },
                  std::chrono::seconds(20), std::chrono::milliseconds(100)));
  CHECK(daemon.Log().find(stream ? "receiving agent connection(s) that closed"
                                 : "receiver_timeout") != std::string::npos);

  // The one left still gets the work.
  auto client = daemon.Connect();
  auto receipt = client->Send(Work(7));
  REQUIRE(receipt.ok());
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->result == Json{{"n", 7}});
}

TEST_CASE("APausedAddressQueuesAcrossARestartAndResumeDeliversEverything") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto serve = StartServe(daemon, dir, kWorker, "serve.log");
  REQUIRE(WaitFor([&] { return AgentRow(daemon, kWorker)["receivers"] == 1; },
                  std::chrono::seconds(20), std::chrono::milliseconds(100)));

  CommandResult paused =
      daemon.Ctl({"pause", kWorker, "--reason", "bad deploy", "--actor", "human:ops"});
  REQUIRE_MESSAGE(paused.exit_code == 0, paused.err);
  auto client = daemon.Connect();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto receipt = client->Send(Work(i));  // still accepted
    REQUIRE(receipt.ok());
    ids.push_back(receipt->intent_id);
  }
  // Nothing is delivered while the receiver asks for work: they stay SUBMITTED.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    for (const std::string& id : ids) {
      auto in = client->Get(id);
      REQUIRE(in.ok());
      REQUIRE(in->status == IntentStatus::kSubmitted);
    }
  }
  Json row = AgentRow(daemon, kWorker);
  CHECK(row["paused"] == true);
  CHECK(row["queued"] == 5);
  CHECK(row["pause_reason"] == "bad deploy");
  CHECK(row["paused_by"] == "human:ops");
  auto status = client->NodeStatus();
  REQUIRE(status.ok());
  REQUIRE((*status)["paused"].size() == 1);
  CHECK((*status)["paused"][0]["address"] == kWorker);

  // Durable: a daemon killed and started again still holds them back.
  daemon.Kill();
  daemon.Start();
  client = daemon.Connect();
  CHECK(AgentRow(daemon, kWorker)["paused"] == true);
  CHECK(daemon.Log().find("is paused") != std::string::npos);
  for (const std::string& id : ids) {
    auto in = client->Get(id);
    REQUIRE(in.ok());
    CHECK(in->status == IntentStatus::kSubmitted);
  }

  CommandResult resumed = daemon.Ctl({"resume", kWorker, "--actor", "human:ops"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  for (const std::string& id : ids) {
    auto done = client->Wait(id, std::chrono::seconds(30));
    REQUIRE(done.ok());
    CHECK(done->status == IntentStatus::kCompleted);
  }
  CHECK(AgentRow(daemon, kWorker)["paused"] == false);

  // The audit trail has both, with who and why.
  auto audit = client->Audit();
  REQUIRE(audit.ok());
  int seen = 0;
  for (const AuditEntry& a : *audit) {
    if (a.event.event_type == "address.paused") {
      ++seen;
      CHECK(a.event.intent_id.empty());
      CHECK(a.event.actor == "human:ops");
      CHECK(a.event.details["address"] == kWorker);
      CHECK(a.event.details["reason"] == "bad deploy");
    }
    if (a.event.event_type == "address.resumed") {
      ++seen;
      CHECK(a.event.actor == "human:ops");
    }
  }
  CHECK(seen == 2);
  CommandResult audit_json = daemon.Ctl({"audit", "--json"});
  REQUIRE(audit_json.exit_code == 0);
  CHECK(audit_json.out.find("\"address.paused\"") != std::string::npos);
}

TEST_CASE("PauseAndResumeAreRefusedForABadAddressAndRepeatingThemChangesNothing") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  CommandResult bad = daemon.Ctl({"pause", "agent://no"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("invalid agent address") != std::string::npos);
  // A reason or an actor past its bound is refused where it enters, and pauses nothing.
  CommandResult long_reason = daemon.Ctl({"pause", kWorker, "--reason", std::string(4097, 'r')});
  CHECK(long_reason.exit_code == 1);
  CHECK(long_reason.err.find("'reason' is over 4 KiB") != std::string::npos);
  CommandResult long_actor = daemon.Ctl({"pause", kWorker, "--actor", std::string(256, 'a')});
  CHECK(long_actor.exit_code == 1);
  CHECK(long_actor.err.find("longer than 255 bytes") != std::string::npos);
  CHECK(daemon.Ctl({"pause", kWorker, "--reason", std::string(4096, 'r')}).exit_code == 0);
  REQUIRE(daemon.Ctl({"resume", kWorker}).exit_code == 0);
  REQUIRE(daemon.Ctl({"pause", kWorker}).exit_code == 0);
  CommandResult again = daemon.Ctl({"pause", kWorker, "--json"});
  REQUIRE(again.exit_code == 0);
  CHECK(Json::parse(again.out)["changed"] == false);
  REQUIRE(daemon.Ctl({"resume", kWorker}).exit_code == 0);
  CommandResult twice = daemon.Ctl({"resume", kWorker, "--json"});
  REQUIRE(twice.exit_code == 0);
  CHECK(Json::parse(twice.out)["changed"] == false);
  auto audit = daemon.Connect()->Audit();
  REQUIRE(audit.ok());
  CHECK(audit->size() == 4);  // two pauses, two resumes: refusals and repeats are not recorded
}

TEST_CASE("APauseOnTheOriginOfAnAddressHostedByAPeerIsForwardedToThatPeer") {
  TempDir dir;
  constexpr const char* kRemoteWorker = "agent://acme/remote/worker";
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}});
  cluster.StartAll();
  cluster.WaitConnected();
  Daemon& a = cluster["node-a"];
  Daemon& b = cluster["node-b"];
  auto serve = StartServe(b, dir, kRemoteWorker, "serve-b.log");
  REQUIRE(WaitFor([&] { return AgentRow(b, kRemoteWorker)["receivers"] == 1; },
                  std::chrono::seconds(20), std::chrono::milliseconds(100)));

  CommandResult paused = a.Ctl({"pause", kRemoteWorker, "--reason", "upstream outage", "--json"});
  REQUIRE_MESSAGE(paused.exit_code == 0, paused.err);
  CHECK(Json::parse(paused.out)["forwarded_to"] == "node-b");
  REQUIRE(WaitFor([&] { return AgentRow(b, kRemoteWorker)["paused"] == true; },
                  std::chrono::seconds(20), std::chrono::milliseconds(100)));
  CHECK(AgentRow(b, kRemoteWorker)["pause_reason"] == "upstream outage");

  auto origin = a.Connect();
  auto receipt = origin->Send(Work(1, kRemoteWorker));
  REQUIRE(receipt.ok());
  REQUIRE(WaitFor([&] { return AgentRow(b, kRemoteWorker)["queued"] == 1; },
                  std::chrono::seconds(20), std::chrono::milliseconds(100)));

  REQUIRE(a.Ctl({"resume", kRemoteWorker}).exit_code == 0);
  auto done = origin->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(AgentRow(b, kRemoteWorker)["paused"] == false);
  // Both nodes keep the record: the origin that asked, the host that applied it.
  auto host_audit = b.Connect()->Audit();
  REQUIRE(host_audit.ok());
  bool from_a = false;
  for (const AuditEntry& e : *host_audit) {
    if (e.event.event_type == "address.paused") from_a = e.event.details["from_node"] == "node-a";
  }
  CHECK(from_a);
}

}  // namespace
}  // namespace handoff::testing
