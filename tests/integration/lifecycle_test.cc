// The full lifecycle across real processes: deadlines, retries with backoff through a daemon
// restart, across two nodes.

#include <doctest/doctest.h>

#include <atomic>

#include "base/clock.h"
#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/cluster.h"

namespace handoff::testing {
namespace {

constexpr const char* kRemote = "agent://acme/remote/worker";

std::vector<NodeSpec> TwoNodes() {
  return {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}};
}

int CountEvents(const std::vector<Event>& events, const std::string& type) {
  int n = 0;
  for (const Event& e : events) n += e.event_type == type;
  return n;
}

TEST_CASE("RetriesAcrossNodesSurviveADestinationRestartDuringTheBackoff") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  std::atomic<int> calls{0};
  // Fails (retryable) on attempts 1 and 2, succeeds on 3.
  auto agents = std::make_unique<AgentPool>(cluster["node-b"], kRemote, 1, [&](Task& task) {
    ++calls;
    if (task.attempt() < 3) return Outcome::Fail("upstream_busy", "try later", true);
    return Outcome::Complete(Json{{"attempt", task.attempt()}});
  });
  auto origin = cluster["node-a"].Connect();
  SendRequest req;
  req.to_agent = kRemote;
  req.intent_type = "intent.flaky.v1";
  req.retry_initial = std::chrono::milliseconds(1500);
  req.retry_multiplier = 1.0;
  auto receipt = origin->Send(req);
  REQUIRE(receipt.ok());

  // The first failure reaches the origin: waiting out its backoff.
  REQUIRE(WaitFor(
      [&] {
        auto in = origin->Get(receipt->intent_id);
        return in.ok() && in->status == IntentStatus::kWaiting && in->waiting_reason == "TIME";
      },
      std::chrono::seconds(20)));
  cluster["node-b"].Kill();
  cluster["node-b"].Start();

  auto done = origin->Wait(receipt->intent_id, std::chrono::seconds(60));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->delivery_attempt == 3);
  CHECK(done->result == Json{{"attempt", 3}});
  REQUIRE(done->last_error.has_value());
  CHECK(done->last_error->code == "upstream_busy");
  auto events = origin->Events(receipt->intent_id);
  REQUIRE(events.ok());
  CHECK(CountEvents(*events, "intent.retry_scheduled") == 2);
  CHECK(CountEvents(*events, "intent.retrying") == 2);
  for (const Event& e : *events) {
    if (e.event_type == "intent.retry_scheduled") CHECK(e.node == "node-b");
  }
  CHECK(calls.load() == 3);
}

TEST_CASE("ADeadlineAcrossNodesEndsTheIntentEverywhereAndStopsItsAgent") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  std::atomic<bool> told{false};
  AgentPool agents(cluster["node-b"], kRemote, 1, [&](Task& task) {
    WaitFor([&] { return task.canceled(); }, std::chrono::seconds(30));
    told.store(task.canceled());
    return Outcome::Complete("too late");  // refused: it timed out
  });
  auto origin = cluster["node-a"].Connect();
  SendRequest req;
  req.to_agent = kRemote;
  req.intent_type = "intent.slow.v1";
  req.lease = std::chrono::milliseconds(600);
  req.deadline_ms = SystemClock::Instance().NowMs() + 1500;
  auto receipt = origin->Send(req);
  REQUIRE(receipt.ok());
  auto done = origin->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kTimedOut);
  CHECK(done->error->code == "deadline_exceeded");
  CHECK(done->result.is_null());
  REQUIRE(WaitFor([&] { return told.load(); }, std::chrono::seconds(20)));
  auto remote = cluster["node-b"].Connect();
  REQUIRE(WaitFor(
      [&] {
        auto there = remote->Get(receipt->intent_id);
        return there.ok() && there->status == IntentStatus::kTimedOut;
      },
      std::chrono::seconds(20)));
}

TEST_CASE("DeadlinesAndAttemptsFromTheCommandLine") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto sent = daemon.Ctl({"--json", "send", "--to", "agent://acme/test/nobody", "--type",
                          "intent.cli.v1", "--deadline", "400ms", "--max-attempts", "2",
                          "--retry-initial", "250ms", "--retry-multiplier", "3", "--retry-max",
                          "10s"});
  REQUIRE(sent.exit_code == 0);
  const std::string id = Json::parse(sent.out)["intent_id"];
  auto got = daemon.Ctl({"--json", "get", id});
  REQUIRE(got.exit_code == 0);
  Json record = Json::parse(got.out);
  CHECK(record["max_attempts"] == 2);
  CHECK(record["deadline"].is_string());
  // Nobody serves the address: the deadline ends it, and wait says so with exit code 5.
  auto waited = daemon.Ctl({"wait", id, "--timeout", "20s"});
  CHECK(waited.exit_code == 5);
  CHECK(waited.err.find("TIMED_OUT") != std::string::npos);
  auto absolute = daemon.Ctl({"send", "--to", "agent://acme/test/nobody", "--type",
                              "intent.cli.v1", "--deadline", "2000-01-01T00:00:00Z"});
  CHECK(absolute.exit_code == 1);
  CHECK(absolute.err.find("already passed") != std::string::npos);
  auto bad = daemon.Ctl({"send", "--to", "agent://acme/test/nobody", "--type", "intent.cli.v1",
                         "--deadline", "someday"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("--deadline") != std::string::npos);
}

TEST_CASE("AnIdempotencyKeyHoldsAcrossARestartFromTheCommandLine") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto send = [&](const std::string& payload) {
    return daemon.Ctl({"--json", "send", "--to", "agent://acme/test/worker", "--type",
                       "intent.pay.v1", "--from", "agent://acme/test/billing", "--payload",
                       payload, "--idempotency-key", "invoice-7"});
  };
  auto first = send("{\"amount\": 10}");
  REQUIRE(first.exit_code == 0);
  Json a = Json::parse(first.out);
  CHECK(a["created"] == true);
  daemon.Kill();
  daemon.Start();
  auto repeat = send("{\"amount\": 10}");
  REQUIRE(repeat.exit_code == 0);
  Json b = Json::parse(repeat.out);
  CHECK(b["intent_id"] == a["intent_id"]);
  CHECK(b["created"] == false);
  auto different = send("{\"amount\": 99}");
  CHECK(different.exit_code == 1);
  CHECK(different.err.find("conflict") != std::string::npos);
  auto list = daemon.Ctl({"--json", "list"});
  REQUIRE(list.exit_code == 0);
  CHECK(Json::parse(list.out).size() == 1);
  auto got = daemon.Ctl({"--json", "get", a["intent_id"]});
  CHECK(Json::parse(got.out)["idempotency_key"] == "invoice-7");
}

}  // namespace
}  // namespace handoff::testing
