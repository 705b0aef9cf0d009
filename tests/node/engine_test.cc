// The lifecycle state machine over a real LMDB store, driven by a manual clock.

#include "node/engine.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>

#include "node/lifecycle.h"
#include "node/receivers.h"
#include "node/waiters.h"
#include "support/temp_dir.h"

namespace handoff::node {
namespace {

using storage::Store;

std::string Map(std::string_view key, int64_t value) {
  MsgWriter w;
  w.BeginMap();
  w.Field(key, value);
  w.EndMap();
  return w.str();
}

class EngineFixture {
 public:
  EngineFixture() { Reopen(); }

  void Reopen() {
    engine_.reset();
    store_.reset();
    auto store = Store::Open(dir_.path(), {}, "node-a");
    REQUIRE(store.ok());
    store_ = std::move(store.value());
    EngineOptions options;
    options.node_name = "node-a";
    options.default_lease_ms = 30'000;
    options.max_payload_bytes = 1024;
    engine_ = std::make_unique<Engine>(*store_, clock_, options);
    REQUIRE(engine_->Recover().ok());
  }

  // Runs `fn` in one write transaction; commits if it returns OK.
  Status Write(const std::function<Status(Txn&, Batch&)>& fn) {
    auto txn = store_->BeginWrite();
    REQUIRE(txn.ok());
    Batch batch;
    Status s = fn(*txn, batch);
    if (!s.ok()) return s;
    HANDOFF_RETURN_IF_ERROR(txn->Commit());
    engine_->Commit(batch);
    last_batch_ = batch;
    return Status::OK();
  }

  IntentId Send(std::string to = "agent://acme/prod/worker", int64_t lease_ms = 0,
                const std::function<void(SendParams&)>& adjust = nullptr) {
    IntentId id;
    Status s = Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.test.v1";
      p.from_agent = "agent://acme/prod/sender";
      p.to_agent = to;
      p.payload = Map("n", 1);
      p.lease_ms = lease_ms;
      if (adjust) adjust(p);
      auto r = engine_->Send(txn, batch, p);
      if (!r.ok()) return r.status();
      id = r->record.id;
      return Status::OK();
    });
    REQUIRE(s.ok());
    return id;
  }

  std::optional<IntentView> Deliver(const std::string& to = "agent://acme/prod/worker") {
    std::optional<IntentView> view;
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              auto r = engine_->DeliverNext(txn, batch, to);
              if (!r.ok()) return r.status();
              view = std::move(r.value());
              return Status::OK();
            }).ok());
    return view;
  }

  IntentView Get(const IntentId& id) {
    auto txn = store_->BeginRead();
    REQUIRE(txn.ok());
    IntentView view;
    REQUIRE(engine_->Get(*txn, id, &view).ok());
    return view;
  }

  std::vector<EventRecord> Events(const IntentId& id) {
    auto txn = store_->BeginRead();
    REQUIRE(txn.ok());
    std::vector<EventRecord> events;
    REQUIRE(engine_->Events(*txn, id, 0, 1000, &events).ok());
    return events;
  }

  Status Fail(const IntentId& id, uint32_t attempt, bool retryable) {
    return Write([&](Txn& txn, Batch& batch) {
      return engine_->Fail(txn, batch, id, attempt, {"flaky", "try again", retryable}).status();
    });
  }
  size_t FireTimers() {
    size_t fired = 0;
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              auto r = engine_->FireTimers(txn, batch, 100);
              if (r.ok()) fired = *r;
              return r.status();
            }).ok());
    return fired;
  }
  void ExpireLeases() {
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              return engine_->ExpireLeases(txn, batch, 100).status();
            }).ok());
  }

  Engine& engine() { return *engine_; }
  ManualClock& clock() { return clock_; }
  const Batch& last_batch() const { return last_batch_; }

 private:
  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Engine> engine_;
  Batch last_batch_;
};

TEST_CASE("SendStoresSubmittedIntentWithCreatedAndSubmittedEvents") {
  EngineFixture f;
  IntentId id = f.Send();
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kSubmitted);
  CHECK(v.record.delivery_attempt == 0);
  CHECK(v.record.origin_node == "node-a");
  CHECK(v.payload == Map("n", 1));
  auto events = f.Events(id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].event_type == "intent.created");
  CHECK(events[0].seq == 1);
  CHECK(events[1].event_type == "intent.submitted");
  CHECK(events[1].seq == 2);
  CHECK(events[1].node == "node-a");
  CHECK(events[1].actor == "agent://acme/prod/sender");
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 1);
}

TEST_CASE("SendRejectsBadInputAndStoresNothing") {
  EngineFixture f;
  auto attempt = [&](const std::function<void(SendParams&)>& mutate) {
    return f.Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.test.v1";
      p.to_agent = "agent://acme/prod/worker";
      p.payload = Map("n", 1);
      mutate(p);
      return f.engine().Send(txn, batch, p).status();
    });
  };
  CHECK(
      attempt([](SendParams& p) { p.to_agent = "agent://Acme/prod/worker"; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.to_agent = "agent://acme/prod"; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.to_agent = "http://acme/prod/x"; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.from_agent = "agent://a//b"; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.intent_type = "test"; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.intent_type = "intent.test.v0"; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.lease_ms = 5; }).IsInvalidArgument());
  CHECK(attempt([](SendParams& p) { p.parent_id = "not-a-uuid"; }).IsInvalidArgument());
  Status big = attempt([](SendParams& p) { p.payload = Map(std::string(2000, 'x'), 1); });
  CHECK(big.IsInvalidArgument());
  CHECK(big.message().find("max_payload_bytes") != std::string::npos);

  CHECK(f.engine().ready_addresses().empty());
  for (int64_t n : f.engine().status_counts()) CHECK(n == 0);
  f.Reopen();
  for (int64_t n : f.engine().status_counts()) CHECK(n == 0);
}

TEST_CASE("SendWithTheSameIntentIdIsIdempotent") {
  EngineFixture f;
  IntentId id = NewIntentId(f.clock().NowMs());
  auto send = [&](int64_t n, bool* created) {
    return f.Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_id = id;
      p.intent_type = "intent.test.v1";
      p.from_agent = "agent://acme/prod/sender";
      p.to_agent = "agent://acme/prod/worker";
      p.payload = Map("n", n);
      auto r = f.engine().Send(txn, batch, p);
      if (r.ok()) *created = r->created;
      return r.status();
    });
  };
  bool created = false;
  REQUIRE(send(1, &created).ok());
  CHECK(created);
  REQUIRE(send(1, &created).ok());
  CHECK_FALSE(created);
  CHECK(f.Events(id).size() == 2);
  CHECK(send(2, &created).IsAlreadyExists());
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 1);
}

TEST_CASE("DeliverNextLeasesTheOldestIntentFirst") {
  EngineFixture f;
  IntentId first = f.Send();
  f.clock().Advance(1);
  IntentId second = f.Send();
  auto d1 = f.Deliver();
  REQUIRE(d1.has_value());
  CHECK(d1->record.id == first);
  CHECK(d1->record.status == IntentStatus::kDelivered);
  CHECK(d1->record.delivery_attempt == 1);
  CHECK(d1->payload == Map("n", 1));
  auto d2 = f.Deliver();
  REQUIRE(d2.has_value());
  CHECK(d2->record.id == second);
  CHECK_FALSE(f.Deliver().has_value());
  CHECK(f.engine().ready_addresses().empty());
  CHECK(f.engine().lease_count() == 2);
  CHECK_FALSE(f.Deliver("agent://acme/prod/other").has_value());
}

TEST_CASE("RedeliversAfterLeaseExpiryWithTheLatestCheckpoint") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 1000);
  auto d = f.Deliver();
  REQUIRE(d.has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Checkpoint(txn, batch, id, 1, Map("step", 3)).status();
           }).ok());
  CHECK(f.Get(id).record.status == IntentStatus::kInProgress);

  f.clock().Advance(999);
  CHECK_FALSE(f.engine().LeaseExpiryDue());
  f.clock().Advance(1);
  CHECK(f.engine().LeaseExpiryDue());
  size_t expired = 0;
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             auto r = f.engine().ExpireLeases(txn, batch, 100);
             if (r.ok()) expired = *r;
             return r.status();
           }).ok());
  CHECK(expired == 1);
  CHECK(f.last_batch().released.size() == 1);
  CHECK(f.Get(id).record.status == IntentStatus::kSubmitted);

  auto again = f.Deliver();
  REQUIRE(again.has_value());
  CHECK(again->record.id == id);
  CHECK(again->record.delivery_attempt == 2);
  CHECK(again->checkpoint == Map("step", 3));

  std::vector<std::string> types;
  for (const auto& e : f.Events(id)) types.push_back(e.event_type);
  CHECK(types == std::vector<std::string>{"intent.created", "intent.submitted", "intent.delivered",
                                          "intent.in_progress", "intent.checkpointed",
                                          "intent.lease_expired", "intent.delivered"});
  uint32_t seq = 0;
  for (const auto& e : f.Events(id)) {
    CHECK(e.seq == seq + 1);
    seq = e.seq;
  }
}

TEST_CASE("HeartbeatExtendsTheLease") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 1000);
  REQUIRE(f.Deliver().has_value());
  for (int i = 0; i < 5; ++i) {
    f.clock().Advance(800);
    REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
               return f.engine().Heartbeat(txn, batch, id, 1).status();
             }).ok());
    CHECK_FALSE(f.engine().LeaseExpiryDue());
  }
  CHECK(f.Get(id).record.status == IntentStatus::kInProgress);
  f.clock().Advance(1000);
  CHECK(f.engine().LeaseExpiryDue());
}

TEST_CASE("AStaleAttemptCannotCompleteOrCheckpoint") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 1000);
  REQUIRE(f.Deliver().has_value());
  f.clock().Advance(1000);
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().ExpireLeases(txn, batch, 10).status();
           }).ok());
  REQUIRE(f.Deliver().has_value());  // attempt 2
  Status s = f.Write([&](Txn& txn, Batch& batch) {
    return f.engine().Complete(txn, batch, id, 1, Map("r", 1)).status();
  });
  CHECK(s.IsConflict());
  CHECK(s.message().find("lease lost") != std::string::npos);
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Checkpoint(txn, batch, id, 1, Map("s", 1)).status();
         }).IsConflict());
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Complete(txn, batch, id, 2, Map("r", 2)).status();
         }).ok());
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kCompleted);
  CHECK(v.result == Map("r", 2));
}

TEST_CASE("ALateResultBeforeRedeliveryIsAccepted") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 1000);
  REQUIRE(f.Deliver().has_value());
  f.clock().Advance(1000);
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().ExpireLeases(txn, batch, 10).status();
           }).ok());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Complete(txn, batch, id, 1, Map("r", 1)).status();
           }).ok());
  CHECK(f.Get(id).record.status == IntentStatus::kCompleted);
  CHECK_FALSE(f.Deliver().has_value());  // dequeued: never delivered a second time
}

TEST_CASE("CompleteIsIdempotentAndASecondTerminalTransitionIsRefused") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  auto complete = [&] {
    return f.Write([&](Txn& txn, Batch& batch) {
      return f.engine().Complete(txn, batch, id, 1, Map("r", 1)).status();
    });
  };
  REQUIRE(complete().ok());
  CHECK(complete().ok());  // a retried request
  CHECK(f.Events(id).size() == 4);
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Fail(txn, batch, id, 1, {"x", "y", false}).status();
         }).IsConflict());
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Cancel(txn, batch, id, "operator", "").status();
         }).IsConflict());
  CHECK(f.Get(id).record.status == IntentStatus::kCompleted);
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kCompleted)] == 1);
}

TEST_CASE("CancelOfAQueuedIntentKeepsItFromBeingDelivered") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine()
                 .Cancel(txn, batch, id, "agent://acme/prod/sender", "no longer needed")
                 .status();
           }).ok());
  CHECK(f.last_batch().settled == std::vector<IntentId>{id});
  CHECK_FALSE(f.Deliver().has_value());
  auto events = f.Events(id);
  CHECK(events.back().event_type == "intent.canceled");
  CHECK(events.back().actor == "agent://acme/prod/sender");
}

TEST_CASE("ACanceledIntentTellsItsAgentAtTheNextHeartbeatAndRefusesItsResult") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Cancel(txn, batch, id, "operator", "").status();
           }).ok());
  CHECK(f.last_batch().released == std::vector<IntentId>{id});
  CHECK(f.engine().lease_count() == 0);
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Heartbeat(txn, batch, id, 1).status();
         }).IsCancelled());
  Status late = f.Write([&](Txn& txn, Batch& batch) {
    return f.engine().Complete(txn, batch, id, 1, Map("r", 1)).status();
  });
  CHECK(late.IsCancelled());
  CHECK(f.Get(id).record.status == IntentStatus::kCanceled);
  CHECK(f.Get(id).result.empty());
}

TEST_CASE("AckAndFailRecordTheirEvents") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Ack(txn, batch, id, 1, /*start=*/true).status();
           }).ok());
  CHECK(f.Get(id).record.status == IntentStatus::kInProgress);
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Fail(txn, batch, id, 1, {"bad_input", "no rows", false}).status();
           }).ok());
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kFailed);
  REQUIRE(v.record.error.has_value());
  CHECK(v.record.error->code == "bad_input");
  std::vector<std::string> types;
  for (const auto& e : f.Events(id)) types.push_back(e.event_type);
  CHECK(types == std::vector<std::string>{"intent.created", "intent.submitted", "intent.delivered",
                                          "intent.acknowledged", "intent.in_progress",
                                          "intent.failed"});
}

TEST_CASE("AnAbortedBatchChangesNothing") {
  EngineFixture f;
  IntentId id = f.Send();
  Status s = f.Write([&](Txn& txn, Batch& batch) {
    HANDOFF_RETURN_IF_ERROR(f.engine().Cancel(txn, batch, id, "operator", "").status());
    return Status::IOError("simulated failure before commit");
  });
  CHECK(s.IsIOError());
  CHECK(f.Get(id).record.status == IntentStatus::kSubmitted);
  CHECK(f.Events(id).size() == 2);
}

TEST_CASE("RecoverRebuildsCountsLeasesAndQueues") {
  EngineFixture f;
  IntentId leased = f.Send("agent://acme/prod/worker", 5000);
  REQUIRE(f.Deliver().has_value());
  IntentId queued = f.Send("agent://acme/prod/other");
  f.clock().Advance(60'000);  // the daemon was down for a minute
  f.Reopen();
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kDelivered)] == 1);
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 1);
  CHECK(f.engine().lease_count() == 1);
  CHECK_FALSE(f.engine().LeaseExpiryDue());  // re-armed for a full lease from now
  f.clock().Advance(5000);
  CHECK(f.engine().LeaseExpiryDue());
  CHECK(f.engine().ready_addresses().count("agent://acme/prod/other") == 1);
  auto d = f.Deliver("agent://acme/prod/other");
  REQUIRE(d.has_value());
  CHECK(d->record.id == queued);
  CHECK(f.Get(leased).record.status == IntentStatus::kDelivered);
}

TEST_CASE("AnUndeliverablePushGoesBackToTheQueueWithoutUsingAnAttempt") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().ReturnUndelivered(txn, batch, id, 1);
           }).ok());
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kSubmitted);
  CHECK(v.record.delivery_attempt == 0);
  CHECK(f.Events(id).back().event_type == "intent.delivery_failed");
  CHECK(f.engine().lease_count() == 0);
  auto again = f.Deliver();
  REQUIRE(again.has_value());
  CHECK(again->record.delivery_attempt == 1);
  // A stale report (the intent moved on) changes nothing.
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().ReturnUndelivered(txn, batch, id, 7);
           }).ok());
  CHECK(f.Get(id).record.status == IntentStatus::kDelivered);
}

TEST_CASE("ReceiversRotateAndCountCredit") {
  ReceiverSet set;
  set.Register("c1", "agent://a/b/c", 2);
  set.Register("c2", "agent://a/b/c", 1);
  IntentId x = NewIntentId(1), y = NewIntentId(2), z = NewIntentId(3);
  set.Assign("c2", x);
  auto room = set.WithRoom();
  REQUIRE(room.size() == 1);
  CHECK(room[0]->routing_id == "c1");
  set.Assign("c1", y);
  set.Assign("c1", z);
  CHECK(set.WithRoom().empty());
  set.Release(y);
  REQUIRE(set.WithRoom().size() == 1);
  set.Release(x);
  auto first = set.WithRoom();
  auto second = set.WithRoom();
  REQUIRE(first.size() == 2);
  CHECK(first[0] != second[0]);  // rotation
  auto held = set.Remove("c1");
  CHECK(held == std::vector<IntentId>{z});
  CHECK(set.size() == 1);
  set.Release(z);  // already gone: harmless
}

TEST_CASE("WaitersAreAnsweredByIntentOrByDeadline") {
  WaiterSet waiters;
  IntentId a = NewIntentId(1), b = NewIntentId(2);
  waiters.Add({a, "c1", 1, 100});
  waiters.Add({a, "c2", 2, 200});
  waiters.Add({b, "c3", 3, 150});
  CHECK(waiters.NextDeadline() == 100);
  auto for_a = waiters.TakeFor(a);
  CHECK(for_a.size() == 2);
  CHECK(waiters.size() == 1);
  CHECK(waiters.TakeExpired(149).empty());
  auto expired = waiters.TakeExpired(150);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].rid == 3);
  CHECK_FALSE(waiters.NextDeadline().has_value());
}

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

TEST_CASE("AnIdempotencyKeyReturnsTheFirstIntentRefusesADifferentBodyAndExpires") {
  EngineFixture f;
  auto send = [&](const std::string& from, int64_t n, SendResult* out) {
    return f.Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.test.v1";
      p.from_agent = from;
      p.to_agent = "agent://acme/prod/worker";
      p.payload = Map("n", n);
      p.idempotency_key = "order-42";
      auto r = f.engine().Send(txn, batch, p);
      if (r.ok()) *out = *r;
      return r.status();
    });
  };
  SendResult first, again, other_sender;
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

TEST_CASE("AReplayOfADeadLetterIsANewIntentLinkedBothWays") {
  EngineFixture f;
  IntentId id =
      f.Send("agent://acme/prod/worker", 0, [](SendParams& p) { p.correlation_id = "case-9"; });
  REQUIRE(f.Deliver().has_value());
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Replay(txn, batch, id, "operator").status();
         }).IsConflict());  // still live
  REQUIRE(f.Fail(id, 1, /*retryable=*/false).ok());
  SendResult replay;
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             auto r = f.engine().Replay(txn, batch, id, "operator");
             if (r.ok()) replay = *r;
             return r.status();
           }).ok());
  IntentView fresh = f.Get(replay.record.id);
  CHECK(fresh.record.status == IntentStatus::kSubmitted);
  CHECK(fresh.record.replay_of == id.ToString());
  CHECK(fresh.record.correlation_id == "case-9");
  CHECK(fresh.payload == f.Get(id).payload);
  CHECK(f.Events(replay.record.id).front().details.find("replay_of") != std::string::npos);
  auto old_events = f.Events(id);
  CHECK(old_events.back().event_type == "intent.replayed");
  CHECK(old_events.back().status == IntentStatus::kFailed);
  CHECK(old_events.back().details.find(replay.record.id.ToString()) != std::string::npos);
  CHECK(f.Get(id).record.status == IntentStatus::kFailed);  // the dead letter itself stays
}

TEST_CASE("ReplyToGetsTheOutcomeAsAnIntentWhenTheIntentEnds") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 0, [](SendParams& p) {
    p.reply_to = "agent://acme/prod/sender";
    p.correlation_id = "case-3";
  });
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Complete(txn, batch, id, 1, Map("answer", 42)).status();
           }).ok());
  auto reply = f.Deliver("agent://acme/prod/sender");
  REQUIRE(reply.has_value());
  CHECK(reply->record.intent_type == "intent.reply.v1");
  CHECK(reply->record.from_agent == "agent://acme/prod/worker");
  CHECK(reply->record.parent_id == id.ToString());
  CHECK(reply->record.correlation_id == "case-3");
  auto payload = Unpack(reply->payload);
  REQUIRE(payload.ok());
  auto m = MapReader::From(payload->get(), "reply");
  REQUIRE(m.ok());
  std::string original, status;
  CHECK(m->String("intent_id", &original).ok());
  CHECK(m->String("status", &status).ok());
  CHECK(original == id.ToString());
  CHECK(status == "COMPLETED");
  CHECK(Pack(*m->Find("result")) == Pack(Unpack(Map("answer", 42))->get()));
  CHECK(f.Events(id).back().event_type == "intent.reply_sent");

  // Any ending replies: a cancel too, with no result.
  IntentId canceled = f.Send("agent://acme/prod/worker", 0,
                             [](SendParams& p) { p.reply_to = "agent://acme/prod/sender"; });
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Cancel(txn, batch, canceled, "operator", "").status();
           }).ok());
  auto second = f.Deliver("agent://acme/prod/sender");
  REQUIRE(second.has_value());
  CHECK(second->record.parent_id == canceled.ToString());
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           SendParams p;
           p.intent_type = "intent.test.v1";
           p.to_agent = "agent://acme/prod/worker";
           p.payload = Map("n", 1);
           p.reply_to = "not an address";
           return f.engine().Send(txn, batch, p).status();
         }).IsInvalidArgument());
}

TEST_CASE("AnIntentHeldForApprovalIsDeliveredOnlyOnceApproved") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 0, [](SendParams& p) {
    p.approval = Approval{"Ship the refund?", {"full", "partial"}, {}, 0, false, {}, {}, {}, 0};
  });
  IntentView held = f.Get(id);
  CHECK(held.record.status == IntentStatus::kWaiting);
  CHECK(held.record.waiting_reason == "HUMAN");
  REQUIRE(held.record.approval.has_value());
  CHECK(held.record.approval->requested_by == "agent://acme/prod/sender");
  CHECK_FALSE(f.Deliver().has_value());
  auto decide = [&](bool approve, const std::string& outcome) {
    return f.Write([&](Txn& txn, Batch& batch) {
      return f.engine()
          .Decide(txn, batch, id, approve, outcome, "looks right", "human:ana")
          .status();
    });
  };
  CHECK(decide(true, "").IsInvalidArgument());  // outcomes were offered: pick one
  CHECK(decide(true, "none").IsInvalidArgument());
  REQUIRE(decide(true, "partial").ok());
  IntentView approved = f.Get(id);
  CHECK(approved.record.status == IntentStatus::kSubmitted);
  CHECK(approved.record.approval->decision == "partial");
  CHECK(approved.record.approval->decided_by == "human:ana");
  CHECK(approved.record.approval->comment == "looks right");
  CHECK(approved.record.approval->decided_at_ms == f.clock().NowMs());
  Status again = decide(false, "");
  CHECK(again.IsConflict());
  CHECK(again.message().find("already decided: partial by human:ana") != std::string::npos);
  auto d = f.Deliver();
  REQUIRE(d.has_value());
  CHECK(d->record.approval->decision == "partial");
  auto events = f.Events(id);
  CHECK(events[2].event_type == "intent.approval_requested");
  CHECK(events[3].event_type == "intent.approval_granted");
  CHECK(events[3].actor == "human:ana");
}

TEST_CASE("ARejectedApprovalCancelsTheIntentBeforeDelivery") {
  EngineFixture f;
  IntentId id = f.Send("agent://acme/prod/worker", 0, [](SendParams& p) {
    p.approval = Approval{"Proceed?", {}, {}, 0, false, {}, {}, {}, 0};
  });
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Decide(txn, batch, id, false, "", "no", "human:bo").status();
           }).ok());
  CHECK(f.Get(id).record.status == IntentStatus::kCanceled);
  CHECK(f.Events(id).back().event_type == "intent.approval_denied");
  CHECK_FALSE(f.Deliver().has_value());
}

TEST_CASE("AnAgentAsksAHumanMidWorkAndResumesFromItsCheckpointWithTheDecision") {
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Checkpoint(txn, batch, id, 1, Map("step", 4)).status();
           }).ok());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine()
                 .RequestApproval(txn, batch, id, 1,
                                  Approval{"Delete 3 rows?", {}, {}, 0, false, {}, {}, {}, 0})
                 .status();
           }).ok());
  IntentView waiting = f.Get(id);
  CHECK(waiting.record.status == IntentStatus::kWaiting);
  CHECK(waiting.record.waiting_reason == "HUMAN");
  CHECK(waiting.record.approval->mid_work);
  CHECK(waiting.record.approval->requested_by == "agent://acme/prod/worker");
  CHECK(f.engine().lease_count() == 0);  // no lease runs out while a human thinks
  f.clock().Advance(3'600'000);
  f.ExpireLeases();
  f.Reopen();  // and it survives a restart
  CHECK(f.Get(id).record.status == IntentStatus::kWaiting);
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Decide(txn, batch, id, false, "", "keep them", "human:cy").status();
           }).ok());
  auto back = f.Deliver();
  REQUIRE(back.has_value());
  CHECK(back->record.delivery_attempt == 2);
  CHECK(back->checkpoint == Map("step", 4));
  REQUIRE(back->record.approval.has_value());
  CHECK(back->record.approval->decision == "rejected");
  CHECK(back->record.approval->comment == "keep them");
}

TEST_CASE("TheAuditTrailListsEveryEventOfTheNodeInOrderAcrossRestarts") {
  EngineFixture f;
  IntentId a = f.Send();
  IntentId b = f.Send("agent://acme/prod/other");
  REQUIRE(f.Deliver().has_value());
  auto read = [&](uint64_t since, std::vector<uint64_t>* seqs, std::vector<EventRecord>* events) {
    REQUIRE(f.Write([&](Txn& txn, Batch&) {
               return f.engine().Audit(txn, since, 100, seqs, events);
             }).ok());
  };
  std::vector<uint64_t> seqs;
  std::vector<EventRecord> events;
  read(0, &seqs, &events);
  REQUIRE(events.size() == 5);  // a: created, submitted; b: created, submitted; a: delivered
  CHECK(seqs == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(events[0].id == a);
  CHECK(events[2].id == b);
  CHECK(events[4].event_type == "intent.delivered");
  f.Reopen();
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Cancel(txn, batch, b, "operator", "").status();
           }).ok());
  seqs.clear();
  events.clear();
  read(5, &seqs, &events);
  REQUIRE(events.size() == 1);
  CHECK(seqs[0] == 6);  // numbering carries on after the restart
  CHECK(events[0].event_type == "intent.canceled");
}

TEST_CASE("LifecycleRefusesIllegalTransitions") {
  using S = IntentStatus;
  CHECK(CanTransition(S::kCreated, S::kSubmitted));
  CHECK(CanTransition(S::kSubmitted, S::kDelivered));
  CHECK(CanTransition(S::kInProgress, S::kSubmitted));
  CHECK_FALSE(CanTransition(S::kCreated, S::kCompleted));
  CHECK_FALSE(CanTransition(S::kSubmitted, S::kInProgress));
  CHECK_FALSE(CanTransition(S::kDelivered, S::kDelivered));
  for (S terminal : {S::kCompleted, S::kFailed, S::kCanceled, S::kTimedOut}) {
    for (int to = 0; to < kIntentStatusCount; ++to) {
      CHECK_FALSE(CanTransition(terminal, static_cast<S>(to)));
    }
  }
  CHECK(CheckTransition(S::kCompleted, S::kCanceled).IsConflict());
}

}  // namespace
}  // namespace handoff::node
