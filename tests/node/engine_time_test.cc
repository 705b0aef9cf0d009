// Retries with backoff, attempts, deadlines and idempotency keys, on a manual clock.

#include <doctest/doctest.h>

#include <algorithm>

#include "node/engine_fixture.h"

namespace handoff::node {
namespace {

TEST_CASE("ARetryableFailureBacksOffExponentiallyThenIsDeliveredAgain") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 0, [](SendParams& p) {
    p.retry_initial_ms = 1000;
    p.retry_multiplier = 3;
    p.retry_max_ms = 5000;
    p.max_attempts = 10;
  });
  for (int64_t expected_delay : {1000, 3000, 5000, 5000}) {
    auto d = f.Deliver();
    REQUIRE(d.has_value());
    const uint32_t attempt = d->record.delivery_attempt;
    REQUIRE(f.Fail(id, attempt, /*retryable=*/true).ok());
    IntentView v = f.Get(id);
    CHECK(v.record.status == IntentStatus::kWaiting);
    CHECK(v.record.waiting_reason == "TIME");
    REQUIRE(v.record.last_error.has_value());
    CHECK(v.record.last_error->code == "flaky");
    CHECK(f.Fail(id, attempt, true).ok());  // a resent fail is a no-op
    CHECK_FALSE(f.Deliver().has_value());   // not before the backoff ends
    f.clock().Advance(expected_delay - 1);
    CHECK(f.FireTimers() == 0);
    f.clock().Advance(1);
    CHECK(f.FireTimers() == 1);
    CHECK(f.Get(id).record.status == IntentStatus::kSubmitted);
  }
  auto last = f.Deliver();
  REQUIRE(last.has_value());
  CHECK(last->record.delivery_attempt == 5);
  std::vector<std::string> types;
  for (const auto& e : f.Events(id)) types.push_back(e.event_type);
  CHECK(std::count(types.begin(), types.end(), "intent.retry_scheduled") == 4);
  CHECK(std::count(types.begin(), types.end(), "intent.retrying") == 4);
}

TEST_CASE("UsedUpAttemptsFailWithDeliveryAttemptsExhaustedAndKeepTheLastError") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 0, [](SendParams& p) {
    p.max_attempts = 2;
    p.retry_initial_ms = 100;
  });
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Fail(id, 1, true).ok());
  f.clock().Advance(100);
  f.FireTimers();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Fail(id, 2, true).ok());
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kFailed);
  REQUIRE(v.record.error.has_value());
  CHECK(v.record.error->code == "delivery_attempts_exhausted");
  CHECK(v.record.error->message.find("flaky: try again") != std::string::npos);
  REQUIRE(v.record.last_error.has_value());
  CHECK(v.record.last_error->code == "flaky");
}

TEST_CASE("LeaseExpiriesCountAsAttempts") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 1000, [](SendParams& p) { p.max_attempts = 2; });
  REQUIRE(f.Deliver().has_value());
  f.clock().Advance(1000);
  f.ExpireLeases();
  CHECK(f.Get(id).record.status == IntentStatus::kSubmitted);
  REQUIRE(f.Deliver().has_value());
  f.clock().Advance(1000);
  f.ExpireLeases();
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kFailed);
  CHECK(v.record.error->code == "delivery_attempts_exhausted");
  CHECK(v.record.last_error->code == "lease_expired");
  CHECK_FALSE(f.Deliver().has_value());
}

TEST_CASE("ANonRetryableFailureFailsAtOnceWhateverTheAttemptsLeft") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Fail(id, 1, /*retryable=*/false).ok());
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kFailed);
  CHECK(v.record.error->code == "flaky");
}

TEST_CASE("ADeadlineTimesTheIntentOutAndItsAgentLearnsOfIt") {
  EngineFixture f;
  const int64_t deadline = f.clock().NowMs() + 5000;
  IntentId id =
      f.Send("agent://acme/prod/worker", 0, [&](SendParams& p) { p.deadline_ms = deadline; });
  REQUIRE(f.Deliver().has_value());
  CHECK(f.engine().NextTimer() == deadline);
  f.clock().Advance(4999);
  CHECK(f.FireTimers() == 0);
  f.clock().Advance(1);
  CHECK(f.engine().TimerDue());
  CHECK(f.FireTimers() == 1);
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kTimedOut);
  CHECK(v.record.error->code == "deadline_exceeded");
  CHECK(f.last_batch().settled == std::vector<IntentId>{id});
  Status hb = f.Write(
      [&](Txn& txn, Batch& batch) { return f.engine().Heartbeat(txn, batch, id, 1).status(); });
  CHECK(hb.IsTimedOut());
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Complete(txn, batch, id, 1, Map("r", 1)).status();
         }).IsTimedOut());
}

TEST_CASE("AnIntentIsNeverDeliveredAfterItsDeadline") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 0,
                       [&](SendParams& p) { p.deadline_ms = f.clock().NowMs() + 100; });
  f.clock().Advance(100);
  CHECK_FALSE(f.Deliver().has_value());  // the timer has not fired; delivery checks anyway
  CHECK(f.Get(id).record.status == IntentStatus::kTimedOut);
  CHECK(f.FireTimers() == 1);  // the timer finds it ended and does nothing more
  CHECK(f.Get(id).record.status == IntentStatus::kTimedOut);
}

TEST_CASE("APastDeadlineOrABadRetryPolicyIsRefused") {
  EngineFixture f;
  auto send = [&](const std::function<void(SendParams&)>& adjust) {
    return f.Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.test.v1";
      p.to_agent = "agent://acme/prod/worker";
      p.payload = Map("n", 1);
      adjust(p);
      return f.engine().Send(txn, batch, p).status();
    });
  };
  CHECK(send([&](SendParams& p) { p.deadline_ms = f.clock().NowMs() - 1; }).IsInvalidArgument());
  CHECK(send([](SendParams& p) { p.retry_multiplier = 0.5; }).IsInvalidArgument());
  CHECK(send([](SendParams& p) { p.retry_initial_ms = -1; }).IsInvalidArgument());
}

TEST_CASE("TheRetryScheduleSurvivesARestart") {
  EngineFixture f;
  IntentId id =
      f.Send("agent://acme/prod/worker", 0, [](SendParams& p) { p.retry_initial_ms = 2000; });
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Fail(id, 1, true).ok());
  const int64_t due = f.clock().NowMs() + 2000;
  f.Reopen();
  CHECK(f.engine().NextTimer() == due);
  f.clock().Advance(2000);
  CHECK(f.FireTimers() == 1);
  auto again = f.Deliver();
  REQUIRE(again.has_value());
  CHECK(again->record.delivery_attempt == 2);
}

TEST_CASE("AnIntentEndedInATurnIsPurgedNoSoonerThanTheNextHoweverShortTheRetention") {
  EngineFixture f([](EngineOptions& o) { o.retention_ms = 1; });
  IntentId id = f.Send();
  auto d = f.Deliver();
  REQUIRE(d.has_value());
  // One turn: the intent completes, its retention passes, and the timers fire. Its sender's
  // wait is answered from what this turn leaves, so the intent must still be there.
  REQUIRE(
      f.Write([&](Txn& txn, Batch& batch) {
         Status s =
             f.engine().Complete(txn, batch, id, d->record.delivery_attempt, Map("n", 1)).status();
         if (!s.ok()) return s;
         f.clock().Advance(5);
         return f.engine().FireTimers(txn, batch, 100).status();
       }).ok());
  CHECK(f.last_batch().settled == std::vector<IntentId>{id});
  CHECK(f.Get(id).record.status == IntentStatus::kCompleted);
  // The next turn purges it.
  f.clock().Advance(5);
  CHECK(f.FireTimers() >= 1);
  auto txn = f.store().BeginRead();
  REQUIRE(txn.ok());
  IntentView view;
  CHECK(f.engine().Get(*txn, id, &view).IsNotFound());
}

TEST_CASE("AnIdempotencyKeyReturnsTheFirstIntentRefusesADifferentBodyAndExpires") {
  EngineFixture f;
  struct Sent {
    IntentRecord record;
    bool created = false;
  };
  auto send = [&](const std::string& from, int64_t n, Sent* out) {
    return f.Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.test.v1";
      p.from_agent = from;
      p.to_agent = "agent://acme/prod/worker";
      p.payload = Map("n", n);
      p.idempotency_key = "order-42";
      auto r = f.engine().Send(txn, batch, p);
      if (r.ok()) *out = Sent{*r->record, r->created};
      return r.status();
    });
  };
  Sent first, again, other_sender;
  REQUIRE(send("agent://acme/prod/a", 1, &first).ok());
  CHECK(first.created);
  REQUIRE(send("agent://acme/prod/a", 1, &again).ok());
  CHECK_FALSE(again.created);
  CHECK(again.record.id == first.record.id);
  Status conflict = send("agent://acme/prod/a", 2, &again);
  CHECK(conflict.IsConflict());
  CHECK(conflict.message().find(first.record.id.ToString()) != std::string::npos);
  // Keys belong to a sender.
  REQUIRE(send("agent://acme/prod/b", 2, &other_sender).ok());
  CHECK(other_sender.created);
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 2);
  // Remembered across a restart, forgotten after the retention (24 h by default).
  f.Reopen();
  REQUIRE(send("agent://acme/prod/a", 1, &again).ok());
  CHECK_FALSE(again.created);
  f.clock().Advance(24LL * 3600 * 1000);
  f.FireTimers();
  REQUIRE(send("agent://acme/prod/a", 2, &again).ok());
  CHECK(again.created);
  CHECK(again.record.id != first.record.id);
}

}  // namespace
}  // namespace handoff::node
