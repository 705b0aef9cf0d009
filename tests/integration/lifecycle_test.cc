// The full lifecycle across real processes: deadlines, retries with backoff through a daemon
// restart, across two nodes.

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <mutex>

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
  auto sent =
      daemon.Ctl({"--json", "send", "--to", "agent://acme/test/nobody", "--type", "intent.cli.v1",
                  "--deadline", "400ms", "--max-attempts", "2", "--retry-initial", "250ms",
                  "--retry-multiplier", "3", "--retry-max", "10s"});
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
  auto absolute = daemon.Ctl({"send", "--to", "agent://acme/test/nobody", "--type", "intent.cli.v1",
                              "--deadline", "2000-01-01T00:00:00Z"});
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
                       "intent.pay.v1", "--from", "agent://acme/test/billing", "--payload", payload,
                       "--idempotency-key", "invoice-7"});
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

TEST_CASE("ReplyToCrossesNodesAndDeadLettersCanBeListedAndReplayed") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  // node-a's sender gets replies; node-b's worker fails "bad" payloads for good.
  std::mutex mu;
  std::vector<Json> replies;
  AgentPool inbox(cluster["node-a"], "agent://acme/local/sender", 1, [&](Task& task) {
    std::lock_guard<std::mutex> lock(mu);
    replies.push_back(Json{{"type", task.intent_type()},
                           {"parent_id", task.intent().parent_id},
                           {"payload", task.payload()}});
    return Outcome::Complete();
  });
  std::atomic<bool> fixed{false};
  AgentPool worker(cluster["node-b"], kRemote, 1, [&](Task& task) {
    if (!fixed.load()) return Outcome::Fail("bad_input", "cannot parse the report", false);
    return Outcome::Complete(Json{{"parsed", task.payload()["report"]}});
  });
  auto origin = cluster["node-a"].Connect();
  SendRequest req;
  req.to_agent = kRemote;
  req.from_agent = "agent://acme/local/sender";
  req.intent_type = "intent.parse.v1";
  req.payload = {{"report", "q3"}};
  req.reply_to = "agent://acme/local/sender";
  req.correlation_id = "case-77";
  auto receipt = origin->Send(req);
  REQUIRE(receipt.ok());
  auto done = origin->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  REQUIRE(done->status == IntentStatus::kFailed);

  // The outcome came back to node-a's sender as an intent.reply.v1.
  REQUIRE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return !replies.empty();
      },
      std::chrono::seconds(20)));
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(replies[0]["type"] == "intent.reply.v1");
    CHECK(replies[0]["parent_id"] == receipt->intent_id);
    CHECK(replies[0]["payload"]["intent_id"] == receipt->intent_id);
    CHECK(replies[0]["payload"]["status"] == "FAILED");
    CHECK(replies[0]["payload"]["error"]["code"] == "bad_input");
  }

  // It is a dead letter on node-a, with its reason.
  auto dlq = cluster["node-a"].Ctl({"dlq"});
  REQUIRE(dlq.exit_code == 0);
  CHECK(dlq.out.find(receipt->intent_id) != std::string::npos);
  CHECK(dlq.out.find("bad_input: cannot parse the report") != std::string::npos);
  auto dlq_json = cluster["node-a"].Ctl({"--json", "dlq"});
  REQUIRE(dlq_json.exit_code == 0);
  Json letters = Json::parse(dlq_json.out);
  REQUIRE(letters.size() == 1);
  CHECK(letters[0]["delivery_attempt"] == 1);
  CHECK(letters[0].contains("age_ms"));

  // Fixed; replayed: a new intent, same payload and correlation id, linked both ways.
  fixed.store(true);
  auto replayed = cluster["node-a"].Ctl({"--json", "replay", receipt->intent_id});
  REQUIRE(replayed.exit_code == 0);
  const std::string new_id = Json::parse(replayed.out)["intent_id"];
  auto second = origin->Wait(new_id, std::chrono::seconds(30));
  REQUIRE(second.ok());
  CHECK(second->status == IntentStatus::kCompleted);
  CHECK(second->result == Json{{"parsed", "q3"}});
  CHECK(second->replay_of == receipt->intent_id);
  CHECK(second->correlation_id == "case-77");
  auto old_events = origin->Events(receipt->intent_id);
  REQUIRE(old_events.ok());
  bool linked = false;
  for (const Event& e : *old_events) {
    linked =
        linked || (e.event_type == "intent.replayed" && e.details["replay_intent_id"] == new_id);
  }
  CHECK(linked);
  auto new_events = origin->Events(new_id);
  REQUIRE(new_events.ok());
  CHECK(new_events->front().details["replay_of"] == receipt->intent_id);
  // Replaying something still live is refused.
  auto live =
      cluster["node-a"].Ctl({"send", "--to", "agent://acme/local/nobody", "--type", "intent.x.v1"});
  REQUIRE(live.exit_code == 0);
  std::string live_id = live.out.substr(0, 36);
  auto refused = cluster["node-a"].Ctl({"replay", live_id});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("only an intent that has ended") != std::string::npos);
}

TEST_CASE("HumanApprovalsBeforeDeliveryAndMidWorkCrossNodesAndRestarts") {
  TempDir dir;
  Cluster cluster(dir, TwoNodes());
  cluster.StartAll();
  // The worker asks a human on its first run; the decision brings the intent back.
  const std::string script = dir.Sub("ask.sh");
  std::ofstream(script) << R"(#!/bin/sh
if [ -z "$HANDOFF_APPROVAL" ]; then
  handoffctl checkpoint "$HANDOFF_INTENT_ID" --state '{"found": 3}'
  handoffctl request-approval "$HANDOFF_INTENT_ID" --question "Delete 3 rows?" \
    --outcomes keep,delete
  exit 0
fi
printf '{"approval":%s,"checkpoint":%s}\n' "$HANDOFF_APPROVAL" "$HANDOFF_CHECKPOINT"
)";
  Daemon& a = cluster["node-a"];
  auto sent = a.Ctl({"--json", "send", "--to", kRemote, "--type", "intent.cleanup.v1",
                     "--require-approval", "--prompt", "Run the cleanup?"});
  REQUIRE(sent.exit_code == 0);
  const std::string id = Json::parse(sent.out)["intent_id"];

  // Held on node-a before delivery; listed; survives a restart.
  auto pending = [&] {
    auto listed = a.Ctl({"--json", "approvals"});
    REQUIRE(listed.exit_code == 0);
    return Json::parse(listed.out);
  };
  REQUIRE(pending().size() == 1);
  CHECK(pending()[0]["question"] == "Run the cleanup?");
  CHECK(pending()[0]["requested_by"] == "agent://node-a/local/anonymous");
  a.Kill();
  a.Start();
  REQUIRE(pending().size() == 1);
  auto text = a.Ctl({"approvals"});
  CHECK(text.out.find("Run the cleanup?") != std::string::npos);
  REQUIRE(a.Ctl({"approve", id, "--comment", "go", "--actor", "human:ana"}).exit_code == 0);
  auto twice = a.Ctl({"approve", id});
  CHECK(twice.exit_code == 1);
  CHECK(twice.err.find("already decided: approved by human:ana") != std::string::npos);
  // The agent starts only now, so the refused second decision above could not meet its question.
  Process serve({HandoffctlPath(), "serve", "--as", kRemote, "--exec", "sh " + script},
                cluster["node-b"].Env(), dir.Sub("serve.log"));

  // Delivered on node-b, where the agent asks mid-work; the question shows on node-a.
  REQUIRE(WaitFor(
      [&] {
        Json p = pending();
        return p.size() == 1 && p[0]["question"] == "Delete 3 rows?";
      },
      std::chrono::seconds(30)));
  CHECK(pending()[0]["mid_work"] == true);
  CHECK(pending()[0]["outcomes"] == Json{"keep", "delete"});
  cluster["node-b"].Kill();
  cluster["node-b"].Start();
  auto wrong = a.Ctl({"approve", id, "--outcome", "maybe"});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("keep, delete") != std::string::npos);
  REQUIRE(
      a.Ctl({"approve", id, "--outcome", "delete", "--comment", "verified", "--actor", "human:bo"})
          .exit_code == 0);

  auto done = a.Connect()->Wait(id, std::chrono::seconds(60));
  REQUIRE(done.ok());
  REQUIRE(done->status == IntentStatus::kCompleted);
  CHECK(done->result["approval"]["decision"] == "delete");
  CHECK(done->result["approval"]["decided_by"] == "human:bo");
  CHECK(done->result["approval"]["comment"] == "verified");
  CHECK(done->result["checkpoint"] == Json{{"found", 3}});
  CHECK(done->delivery_attempt == 2);
  auto events = a.Connect()->Events(id);
  REQUIRE(events.ok());
  std::vector<std::string> decisions;
  for (const Event& e : *events) {
    if (e.event_type.rfind("intent.approval_", 0) == 0) {
      decisions.push_back(e.event_type + "@" + e.node + "/" + e.actor);
    }
  }
  CHECK(decisions ==
        std::vector<std::string>{"intent.approval_requested@node-a/agent://node-a/local/anonymous",
                                 "intent.approval_granted@node-a/human:ana",
                                 "intent.approval_requested@node-b/agent://acme/remote/worker",
                                 "intent.approval_granted@node-b/human:bo"});

  // Rejected before delivery: canceled, and wait says so.
  auto held = a.Ctl({"send", "--to", kRemote, "--type", "intent.cleanup.v1", "--require-approval",
                     "--prompt", "Again?"});
  REQUIRE(held.exit_code == 0);
  const std::string second = held.out.substr(0, 36);
  REQUIRE(a.Ctl({"reject", second, "--comment", "not today"}).exit_code == 0);
  CHECK(a.Ctl({"wait", second, "--timeout", "10s"}).exit_code == 4);
  CHECK(a.Ctl({"approve", second}).exit_code == 1);
}

}  // namespace
}  // namespace handoff::testing
