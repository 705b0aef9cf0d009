// Replays, replies, human approvals and the audit trail.

#include <doctest/doctest.h>

#include <algorithm>

#include "node/engine_fixture.h"

namespace handoff::node {
namespace {

TEST_CASE("AReplayOfADeadLetterIsANewIntentLinkedBothWays") {
  EngineFixture f;
  IntentId id =
      f.Send("agent://acme/prod/worker", 0, [](SendParams& p) { p.correlation_id = "case-9"; });
  REQUIRE(f.Deliver().has_value());
  CHECK(f.Write([&](Txn& txn, Batch& batch) {
           return f.engine().Replay(txn, batch, id, "operator").status();
         }).IsConflict());  // still live
  REQUIRE(f.Fail(id, 1, /*retryable=*/false).ok());
  IntentId replay_id;  // the record Replay returns is the turn's: only its id outlives it
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             auto r = f.engine().Replay(txn, batch, id, "operator");
             if (r.ok()) replay_id = r->record->id;
             return r.status();
           }).ok());
  IntentView fresh = f.Get(replay_id);
  CHECK(fresh.record.status == IntentStatus::kSubmitted);
  CHECK(fresh.record.replay_of == id.ToString());
  CHECK(fresh.record.correlation_id == "case-9");
  CHECK(fresh.payload == f.Get(id).payload);
  CHECK(f.Events(replay_id).front().details.find("replay_of") != std::string::npos);
  auto old_events = f.Events(id);
  CHECK(old_events.back().event_type == "intent.replayed");
  CHECK(old_events.back().status == IntentStatus::kFailed);
  CHECK(old_events.back().details.find(replay_id.ToString()) != std::string::npos);
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
  auto read = [&](uint64_t since, std::vector<EventRecord>* events) {
    REQUIRE(
        f.Write([&](Txn& txn, Batch&) { return f.engine().Audit(txn, since, 100, events); }).ok());
  };
  std::vector<EventRecord> events;
  read(0, &events);
  REQUIRE(events.size() == 5);  // a: created, submitted; b: created, submitted; a: delivered
  for (size_t i = 0; i < events.size(); ++i) CHECK(events[i].audit_seq == i + 1);
  CHECK(events[0].id == a);
  CHECK(events[2].id == b);
  CHECK(events[4].event_type == "intent.delivered");
  f.Reopen();
  REQUIRE(f.Write([&](Txn& txn, Batch& batch) {
             return f.engine().Cancel(txn, batch, b, "operator", "").status();
           }).ok());
  events.clear();
  read(5, &events);
  REQUIRE(events.size() == 1);
  CHECK(events[0].audit_seq == 6);  // numbering carries on after the restart
  CHECK(events[0].event_type == "intent.canceled");
}

}  // namespace
}  // namespace handoff::node
