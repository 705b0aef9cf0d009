// Bounded resources, against real daemons: ended intents are purged after the retention (dead
// letters kept until replayed or purged), and a full map refuses new sends while everything
// already accepted still completes.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "handoff/agent.h"
#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/cluster.h"
#include "support/daemon.h"

namespace handoff::testing {
namespace {

constexpr const char* kWorker = "agent://acme/test/worker";

SendRequest Work(int64_t n, size_t padding = 0) {
  SendRequest req;
  req.to_agent = kWorker;
  req.from_agent = "agent://acme/test/sender";
  req.intent_type = "intent.test.double.v1";
  req.payload = {{"n", n}, {"pad", std::string(padding, 'x')}};
  req.lease = std::chrono::seconds(5);
  return req;
}

// Good work completes; a negative n fails for good (a dead letter).
Outcome DoubleOrFail(Task& task) {
  const int64_t n = task.payload().value("n", int64_t{0});
  if (n < 0) return Outcome::Fail("bad_input", "n must not be negative");
  return Outcome::Complete(Doubled(n));
}

// Polls `done` every 50 ms for at most `limit`.
template <typename Fn>
bool Eventually(Fn done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

nlohmann::json Status(const Daemon& daemon) {
  CommandResult r = daemon.Ctl({"--json", "status"});
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

TEST_CASE("EndedIntentsArePurgedAfterTheRetentionAndDeadLettersAreKept") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "retention = \"1s\"\nmax_attempts = 1");
  daemon.Start();
  AgentPool agents(daemon, kWorker, 2, DoubleOrFail);
  auto client = daemon.Connect();

  std::vector<std::string> good;
  for (int64_t i = 0; i < 20; ++i) {
    auto receipt = client->Send(Work(i));
    REQUIRE(receipt.ok());
    good.push_back(receipt->intent_id);
  }
  auto bad = client->Send(Work(-1));
  REQUIRE(bad.ok());
  for (const std::string& id : good) {
    auto done = client->Wait(id, std::chrono::seconds(20));
    REQUIRE(done.ok());
    CHECK(done->status == IntentStatus::kCompleted);
  }
  auto failed = client->Wait(bad->intent_id, std::chrono::seconds(20));
  REQUIRE(failed.ok());
  REQUIRE(failed->status == IntentStatus::kFailed);

  // The completed ones go with their events and audit entries; the dead letter stays.
  CHECK(Eventually([&] {
    for (const std::string& id : good) {
      if (!client->Get(id).status().IsNotFound()) return false;
    }
    return true;
  }));
  CHECK(client->Events(good.front()).status().IsNotFound());
  auto kept = client->Get(bad->intent_id);
  REQUIRE(kept.ok());
  CHECK(kept->status == IntentStatus::kFailed);
  auto audit = client->Audit(0, 10'000);
  REQUIRE(audit.ok());
  REQUIRE_FALSE(audit->empty());
  for (const AuditEntry& e : *audit) CHECK(e.event.intent_id == bad->intent_id);
  nlohmann::json status = Status(daemon);
  CHECK(status["purged"].get<int64_t>() == 20);
  CHECK(status["intents"]["COMPLETED"].get<int64_t>() == 0);
  CHECK(status["intents"]["FAILED"].get<int64_t>() == 1);
  CommandResult dlq = daemon.Ctl({"dlq"});
  CHECK(dlq.exit_code == 0);
  CHECK(dlq.out.find(bad->intent_id) != std::string::npos);

  // Replayed, the dead letter is kept for the retention only; its replay (failing again) is a
  // new dead letter, which an operator purges by hand.
  auto replay = client->Replay(bad->intent_id);
  REQUIRE(replay.ok());
  CHECK(Eventually([&] { return client->Get(bad->intent_id).status().IsNotFound(); }));
  auto again = client->Wait(replay->intent_id, std::chrono::seconds(20));
  REQUIRE(again.ok());
  CHECK(again->status == IntentStatus::kFailed);
  CommandResult purge = daemon.Ctl({"purge", replay->intent_id});
  CHECK(purge.exit_code == 0);
  CHECK(purge.out.find("purged " + replay->intent_id) != std::string::npos);
  CHECK(client->Get(replay->intent_id).status().IsNotFound());

  // A live intent cannot be purged; an unknown one is not found.
  SendRequest idle = Work(1);
  idle.to_agent = "agent://acme/test/nobody";
  auto live = client->Send(idle);
  REQUIRE(live.ok());
  CommandResult refused = daemon.Ctl({"purge", live->intent_id});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("only an ended intent can be purged") != std::string::npos);
  CHECK(client->Get(live->intent_id).ok());
  CHECK(daemon.Ctl({"purge", "018f0000-0000-7000-8000-000000000000"}).exit_code == 1);
}

TEST_CASE("AcrossNodesTheOriginKeepsTheDeadLetterAndTheDestinationsCopyGoes") {
  TempDir dir;
  const std::string retention = "retention = \"1s\"\nmax_attempts = 1";
  Cluster cluster(dir,
                  {{"node-a", {}, retention}, {"node-b", {"agent://acme/remote/*"}, retention}});
  cluster.StartAll();
  cluster.WaitConnected();
  AgentPool agents(cluster["node-b"], "agent://acme/remote/worker", 1, DoubleOrFail);
  auto a = cluster["node-a"].Connect();
  auto b = cluster["node-b"].Connect();

  SendRequest good = Work(3), bad = Work(-3);
  good.to_agent = bad.to_agent = "agent://acme/remote/worker";
  auto done = a->Send(good);
  auto failed = a->Send(bad);
  REQUIRE(done.ok());
  REQUIRE(failed.ok());
  auto d = a->Wait(done->intent_id, std::chrono::seconds(30));
  auto f = a->Wait(failed->intent_id, std::chrono::seconds(30));
  REQUIRE(d.ok());
  REQUIRE(f.ok());
  CHECK(d->status == IntentStatus::kCompleted);
  CHECK(f->status == IntentStatus::kFailed);

  // Both copies of the completed one go; node-b's copy of the failed one goes too, while
  // node-a, where it was sent from, keeps it as a dead letter.
  CHECK(Eventually([&] {
    return a->Get(done->intent_id).status().IsNotFound() &&
           b->Get(done->intent_id).status().IsNotFound() &&
           b->Get(failed->intent_id).status().IsNotFound();
  }));
  auto kept = a->Get(failed->intent_id);
  REQUIRE(kept.ok());
  CHECK(kept->status == IntentStatus::kFailed);
  auto history = a->Events(failed->intent_id);
  REQUIRE(history.ok());
  CHECK(history->back().event_type == "intent.failed");
  CHECK(history->back().node == "node-b");
}

TEST_CASE("RetentionTimersSurviveASigkill") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "retention = \"2s\"");
  daemon.Start();
  std::string id;
  {
    AgentPool agents(daemon, kWorker, 1, DoubleOrFail);
    auto client = daemon.Connect();
    auto receipt = client->Send(Work(7));
    REQUIRE(receipt.ok());
    id = receipt->intent_id;
    auto done = client->Wait(id, std::chrono::seconds(20));
    REQUIRE(done.ok());
    REQUIRE(done->status == IntentStatus::kCompleted);
  }
  daemon.Kill();
  daemon.Start();
  auto client = daemon.Connect();
  CHECK(Eventually([&] { return client->Get(id).status().IsNotFound(); }));
}

TEST_CASE("AFullMapRefusesNewSendsWhileAcceptedIntentsComplete") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "map_size = \"1MiB\"");
  daemon.Start();
  auto client = daemon.Connect();

  // No agent yet: fill the store with accepted intents until it says it is full.
  std::vector<std::string> accepted;
  handoff::Status refused;
  for (int64_t i = 0; i < 2000 && refused.ok(); ++i) {
    auto receipt = client->Send(Work(i, 1000));
    if (receipt.ok()) {
      accepted.push_back(receipt->intent_id);
    } else {
      refused = receipt.status();
    }
  }
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.IsResourceExhausted());
  CHECK(refused.message().find("the store is full") != std::string::npos);
  REQUIRE(accepted.size() >= 20);
  // The log said so before it happened, with what to do.
  const std::string log = daemon.Log();
  const size_t nearing = log.find("the store is nearing its map_size");
  CHECK(nearing != std::string::npos);
  CHECK(nearing < log.find("the store is full"));
  CHECK(log.find("or raise map_size", nearing) != std::string::npos);
  CHECK(daemon.running());
  nlohmann::json status = Status(daemon);
  CHECK_FALSE(status["accepting_sends"].get<bool>());
  // `handoffctl health` fails while sends are refused, for a probe to notice.
  CommandResult unhealthy = daemon.Ctl({"health"});
  CHECK(unhealthy.exit_code == 1);
  CHECK(unhealthy.err.find("answers but does not accept sends: the store is full") !=
        std::string::npos);
  CommandResult text = daemon.Ctl({"status"});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("REFUSED: the store is full") != std::string::npos);
  CHECK(status["intents"]["SUBMITTED"].get<size_t>() == accepted.size());
  CommandResult ctl = daemon.Ctl(
      {"send", "--to", kWorker, "--type", "intent.test.double.v1", "--payload", R"({"n": 1})"});
  CHECK(ctl.exit_code == 1);
  CHECK(ctl.err.find("resource_exhausted") != std::string::npos);

  // Everything accepted still completes, with its result.
  {
    AgentPool agents(daemon, kWorker, 2);
    for (size_t i = 0; i < accepted.size(); ++i) {
      auto done = client->Wait(accepted[i], std::chrono::seconds(30));
      REQUIRE(done.ok());
      CHECK(done->status == IntentStatus::kCompleted);
      CHECK(done->result == Doubled(static_cast<int64_t>(i)));
    }
  }

  // Purging frees the space, and sends are accepted again.
  for (const std::string& id : accepted) REQUIRE(client->Purge(id).ok());
  CHECK(Eventually([&] { return client->Send(Work(1, 1000)).ok(); }));
  CHECK(Status(daemon)["accepting_sends"].get<bool>());
  CHECK(daemon.Ctl({"health"}).exit_code == 0);
}

TEST_CASE("ACommitThatFailsRefusesItsBatchAndTheNodeGoesOn") {
  // Completes are not charged against the room for new sends, so a result far bigger than
  // the 6 KiB allowance can overflow the map in the Committer: that commit fails as a whole,
  // its complete is refused, and the intent is delivered again once its lease runs out.
  TempDir dir;
  Daemon daemon(dir, "node-a", "map_size = \"1MiB\"");
  daemon.Start();
  auto client = daemon.Connect();
  auto receipt = client->Send(Work(21));
  REQUIRE(receipt.ok());
  std::atomic<int> calls{0};
  {
    AgentPool agents(daemon, kWorker, 1, [&](Task& task) {
      if (calls++ == 0) return Outcome::Complete({{"huge", std::string(1000 << 10, 'r')}});
      return DoubleOrFail(task);
    });
    auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
    REQUIRE(done.ok());
    CHECK(done->status == IntentStatus::kCompleted);
    CHECK(done->result == Doubled(21));
  }
  CHECK(calls.load() == 2);
  CHECK(daemon.running());
  CHECK(Status(daemon)["failed_commits"].get<int64_t>() >= 1);
  CHECK(daemon.Log().find("a commit failed and nothing of it was stored") != std::string::npos);
  auto history = client->Events(receipt->intent_id);
  REQUIRE(history.ok());
  int completed = 0;
  for (const auto& e : *history) completed += e.event_type == "intent.completed";
  CHECK(completed == 1);               // the refused complete left no trace
  CHECK(client->Send(Work(22)).ok());  // and the node takes new work
}

}  // namespace
}  // namespace handoff::testing
