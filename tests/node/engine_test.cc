// The lifecycle state machine over a real LMDB store, driven by a manual clock.

#include "node/engine.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>

#include "node/engine_fixture.h"
#include "node/lifecycle.h"

namespace handoff::node {
namespace {

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

  // A new id is told from a repeat without a lookup when it is past every id the node has;
  // a repeat is still a repeat once newer intents exist, and after a restart.
  f.clock().Advance(5);
  f.Send();
  REQUIRE(send(1, &created).ok());
  CHECK_FALSE(created);
  f.Reopen();
  REQUIRE(send(1, &created).ok());
  CHECK_FALSE(created);
  CHECK(send(2, &created).IsAlreadyExists());
  // An id older than the newest that no intent has is new all the same.
  id = NewIntentId(f.clock().NowMs() - 1000);
  REQUIRE(send(1, &created).ok());
  CHECK(created);
  CHECK(f.engine().status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 3);
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

TEST_CASE("AnIntentBackInTheQueueIsDeliveredBeforeNewerOnes") {
  // DeliverNext searches from the last intent it took; an older one queued again (its lease
  // ran out) must still come first.
  EngineFixture f;
  IntentId old = f.Send("agent://acme/prod/worker", 1000);
  f.clock().Advance(1);
  IntentId middle = f.Send();
  auto d = f.Deliver();
  REQUIRE(d.has_value());
  CHECK(d->record.id == old);
  auto d2 = f.Deliver();
  REQUIRE(d2.has_value());
  CHECK(d2->record.id == middle);
  IntentId newer = f.Send();
  f.clock().Advance(1000);
  f.ExpireLeases();  // `old` is queued again, behind where the search left off
  auto again = f.Deliver();
  REQUIRE(again.has_value());
  CHECK(again->record.id == old);
  CHECK(again->record.delivery_attempt == 2);
  auto last = f.Deliver();
  REQUIRE(last.has_value());
  CHECK(last->record.id == newer);
  CHECK_FALSE(f.Deliver().has_value());
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

TEST_CASE("ARefusedRequestLeavesTheRecordAsItWasForTheRestOfTheTurnAndAfter") {
  // Requests change the turn's record in place (Engine::Stage): one that is refused must not
  // have changed it, for the requests after it in the same turn or once the turn commits.
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             Status stale = f.engine().Complete(txn, batch, id, 7, Map("r", 1)).status();
             CHECK(stale.IsConflict());
             SendParams p;
             p.intent_id = id;
             p.intent_type = "intent.other.v1";
             p.from_agent = "agent://acme/prod/caller";
             p.to_agent = "agent://acme/prod/worker";
             p.payload = Map("x", 1);
             CHECK(f.engine().Send(txn, batch, p).status().IsAlreadyExists());
             IntentView now;
             HANDOFF_RETURN_IF_ERROR(f.engine().Get(txn, id, &now));
             CHECK(now.record.status == IntentStatus::kDelivered);
             CHECK(now.record.delivery_attempt == 1);
             CHECK(now.record.intent_type != "intent.other.v1");
             auto done = f.engine().Complete(txn, batch, id, 1, Map("r", 2));
             HANDOFF_RETURN_IF_ERROR(done.status());
             CHECK((*done)->status == IntentStatus::kCompleted);
             return Status::OK();
           }).ok());
  IntentView v = f.Get(id);
  CHECK(v.record.status == IntentStatus::kCompleted);
  CHECK(v.record.delivery_attempt == 1);
  CHECK(v.result == Map("r", 2));
  CHECK(f.Events(id).back().event_type == "intent.completed");
}

TEST_CASE("AgentReportsThatAreRefusedLeaveTheStagedRecordAsItWas") {
  // Ack, heartbeat, checkpoint, fail, approval and cancel change the turn's staged record in
  // place too. Each checks everything that can refuse it first, the room for one more event
  // included (32-bit numbers): refused, it has changed nothing the rest of the turn or the
  // store would see.
  EngineFixture f;
  IntentId id = f.Send();
  REQUIRE(f.Deliver().has_value());
  IntentRecord near_end = f.Get(id).record;
  near_end.seq = UINT32_MAX - 2;
  REQUIRE(f.Write([&](Txn& txn, Batch&) { return f.store().PutIntent(txn, near_end); }).ok());
  REQUIRE(f.engine().Rollback().ok());  // drop the cached copy
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             auto acked = f.engine().Ack(txn, batch, id, 1, /*start=*/true);  // two events
             HANDOFF_RETURN_IF_ERROR(acked.status());
             CHECK((*acked)->status == IntentStatus::kInProgress);
             CHECK((*acked)->seq == UINT32_MAX);
             return Status::OK();
           }).ok());

  auto unchanged = [&](Txn& txn) {
    IntentView now;
    REQUIRE(f.engine().Get(txn, id, &now).ok());
    CHECK(now.record.status == IntentStatus::kInProgress);
    CHECK(now.record.seq == UINT32_MAX);
    CHECK(now.record.delivery_attempt == 1);
    CHECK_FALSE(now.record.has_checkpoint);
    CHECK(now.checkpoint.empty());
    CHECK_FALSE(now.record.last_error.has_value());
    CHECK_FALSE(now.record.error.has_value());
    CHECK_FALSE(now.record.approval.has_value());
    CHECK(now.record.waiting_reason.empty());
  };
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             CHECK(f.engine().Checkpoint(txn, batch, id, 1, Map("step", 1)).status().IsConflict());
             unchanged(txn);
             CHECK(f.engine()
                       .Fail(txn, batch, id, 1, {"flaky", "again", /*retryable=*/true})
                       .status()
                       .IsConflict());
             unchanged(txn);
             CHECK(f.engine()
                       .Fail(txn, batch, id, 1, {"bad", "input", /*retryable=*/false})
                       .status()
                       .IsConflict());
             unchanged(txn);
             Approval question;
             question.question = "ship it?";
             CHECK(f.engine().RequestApproval(txn, batch, id, 1, question).status().IsConflict());
             unchanged(txn);
             CHECK(f.engine().Cancel(txn, batch, id, "operator", "").status().IsConflict());
             unchanged(txn);
             // A report that records nothing still goes through.
             auto beat = f.engine().Heartbeat(txn, batch, id, 1);
             HANDOFF_RETURN_IF_ERROR(beat.status());
             CHECK(beat->record->status == IntentStatus::kInProgress);
             unchanged(txn);
             return Status::OK();
           }).ok());
  auto txn = f.store().BeginRead();
  REQUIRE(txn.ok());
  unchanged(*txn);
  // (Numbered near the end by hand: only the events after that are listed.)
  std::vector<EventRecord> last;
  REQUIRE(f.engine().Events(*txn, id, UINT32_MAX - 1, 10, &last).ok());
  REQUIRE(last.size() == 1);
  CHECK(last[0].event_type == "intent.in_progress");
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
