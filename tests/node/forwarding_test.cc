// Forwarding between two nodes with the network taken out: each node's outbox is read and its
// messages applied to the other node's engine by hand, so retransmission, reordering and loss
// can be staged exactly. Real LMDB stores, a manual clock.

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <memory>

#include "node/forwarding_fixture.h"

namespace handoff::node {
namespace {

TEST_CASE("ARoutedIntentIsStoredAtTheOriginAndForwardedThroughTheOutbox") {
  Pair n;
  IntentId id = n.Send();
  IntentView at_a = n.a.Get(id);
  CHECK(at_a.record.status == IntentStatus::kSubmitted);
  CHECK(at_a.record.target_node == "node-b");
  CHECK(n.a.last.emitted.at("node-b") == 1);
  CHECK(n.a.engine->ready_addresses().empty());  // not queued here

  REQUIRE(n.a.Outbox("node-b").size() == 1);
  CHECK(Pump(n.a, n.b, "node-b") == 1);
  IntentView at_b = n.b.Get(id);
  CHECK(at_b.record.status == IntentStatus::kSubmitted);
  CHECK(at_b.record.origin_node == "node-a");
  CHECK(at_b.record.target_node == "node-b");
  CHECK(at_b.record.correlation_id == "corr-1");
  CHECK(Canonical(at_b.payload) == Canonical(Payload()));
  CHECK(n.b.engine->ready_addresses().count(kRemoteAgent) == 1);

  // The destination's first event goes back to the origin.
  CHECK(Pump(n.b, n.a, "node-a") == 1);
  auto events = n.a.Events(id);
  REQUIRE(events.size() == 3);
  CHECK(events[2].event_type == "intent.received");
  CHECK(events[2].node == "node-b");
  CHECK(events[2].seq == 3);
}

TEST_CASE("TheDestinationsLifecycleReachesTheOriginWithCheckpointAndResult") {
  Pair n;
  IntentId id = n.Send();
  Pump(n.a, n.b, "node-b");
  std::optional<IntentView> delivered;
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               auto d = n.b.engine->DeliverNext(txn, batch, kRemoteAgent);
               if (d.ok() && *d) delivered = (*d)->Copy();
               return d.status();
             })
              .ok());
  REQUIRE(delivered.has_value());
  MsgWriter state;
  state.BeginMap();
  state.Field("step", int64_t{2});
  state.EndMap();
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               HANDOFF_RETURN_IF_ERROR(n.b.engine->Ack(txn, batch, id, 1, true).status());
               return n.b.engine->Checkpoint(txn, batch, id, 1, state.view()).status();
             })
              .ok());
  Pump(n.b, n.a, "node-a");
  IntentView mid = n.a.Get(id);
  CHECK(mid.record.status == IntentStatus::kInProgress);
  CHECK(mid.record.delivery_attempt == 1);
  CHECK(Canonical(mid.checkpoint) == Canonical(state.str()));

  const std::string result = Payload();
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->Complete(txn, batch, id, 1, result).status();
             })
              .ok());
  const size_t shipped = n.b.Outbox("node-a").size();
  Pump(n.b, n.a, "node-a");
  IntentView done = n.a.Get(id);
  CHECK(done.record.status == IntentStatus::kCompleted);
  CHECK(Canonical(done.result) == Canonical(result));
  CHECK(n.a.last.settled == std::vector<IntentId>{id});  // origin waiters are answered

  std::vector<std::string> types;
  std::vector<std::string> nodes;
  uint32_t seq = 0;
  for (const auto& e : n.a.Events(id)) {
    CHECK(e.seq == ++seq);
    types.push_back(e.event_type);
    nodes.push_back(e.node);
  }
  CHECK(types == std::vector<std::string>{"intent.created", "intent.submitted", "intent.received",
                                          "intent.delivered", "intent.acknowledged",
                                          "intent.in_progress", "intent.checkpointed",
                                          "intent.completed"});
  CHECK(nodes == std::vector<std::string>{"node-a", "node-a", "node-b", "node-b", "node-b",
                                          "node-b", "node-b", "node-b"});

  // Each event at the origin keeps the status it left at the destination (the update that
  // carried ack, in_progress and checkpointed together ended IN_PROGRESS, but the acknowledged
  // event still says ACKNOWLEDGED).
  const std::vector<EventRecord> there = n.b.Events(id);
  const std::vector<EventRecord> here = n.a.Events(id);
  REQUIRE(there.size() == 6);
  REQUIRE(here.size() == 8);
  for (size_t i = 0; i < there.size(); ++i) {
    CAPTURE(i);
    CHECK(here[i + 2].event_type == there[i].event_type);
    CHECK(here[i + 2].status == there[i].status);
    CHECK(here[i + 2].at_ms == there[i].at_ms);
  }
  CHECK(there[2].status == IntentStatus::kAcknowledged);

  // Every update retransmitted: nothing changes, no second event.
  for (const auto& entry : n.b.Outbox("node-a")) n.a.Receive(entry.frame);
  CHECK(n.a.Events(id).size() == 8);
  // One update per intent per transaction at the destination, however many events it
  // recorded: received; delivered; acknowledged, in_progress and checkpointed; completed.
  CHECK(shipped == 4);
}

TEST_CASE("UpdatesGatheredInATurnLeaveBeforeAnyLaterMessageToThatPeer") {
  // node-b also routes to node-a: an agent there sends an intent back mid-turn.
  ManualClock clock;
  TestNode a{"node-a", clock, {{"agent://acme/prod/*", "node-b"}}};
  TestNode b{"node-b", clock, {{"agent://acme/lab/*", "node-a"}}};
  const IntentId id = SendRemote(a);
  Pump(a, b, "node-b");
  const size_t before = b.Outbox("node-a").size();  // the update with intent.received

  // One turn: delivered (an update starts), an intent for node-a (must follow that update),
  // then acknowledged and in progress (a new update, after the intent, with both events).
  REQUIRE(b.Write([&](Txn& txn, Batch& batch) {
             HANDOFF_RETURN_IF_ERROR(b.engine->DeliverNext(txn, batch, kRemoteAgent).status());
             SendParams p;
             p.intent_type = "intent.answer.v1";
             p.from_agent = kRemoteAgent;
             p.to_agent = "agent://acme/lab/sender";
             p.payload = Payload();
             HANDOFF_RETURN_IF_ERROR(b.engine->Send(txn, batch, p).status());
             return b.engine->Ack(txn, batch, id, 1, true).status();
           }).ok());
  auto entries = b.Outbox("node-a");
  REQUIRE(entries.size() == before + 3);
  std::vector<std::string> kinds;
  std::vector<std::vector<std::string>> events;
  for (size_t i = before; i < entries.size(); ++i) {
    auto msg = wire::DecodePeerMessage(entries[i].frame);
    REQUIRE(msg.ok());
    kinds.push_back(msg->kind);
    std::vector<std::string> types;
    if (msg->kind == wire::peer_kind::kUpdate) {
      auto u = wire::ReadRemoteUpdate(*msg->body, msg->from);
      REQUIRE(u.ok());
      for (const EventRecord& e : u->events) types.push_back(e.event_type);
    }
    events.push_back(types);
  }
  CHECK(kinds == std::vector<std::string>{"update", "intent", "update"});
  CHECK(events[0] == std::vector<std::string>{"intent.delivered"});
  CHECK(events[2] == std::vector<std::string>{"intent.acknowledged", "intent.in_progress"});

  // Applied in that order, the origin's history is complete and in order.
  Pump(b, a, "node-a");
  std::vector<std::string> types;
  for (const auto& e : a.Events(id)) types.push_back(e.event_type);
  CHECK(types == std::vector<std::string>{"intent.created", "intent.submitted", "intent.received",
                                          "intent.delivered", "intent.acknowledged",
                                          "intent.in_progress"});
  CHECK(a.Get(id).record.status == IntentStatus::kInProgress);
}

TEST_CASE("ATurnsUpdatesToOnePeerTakeConsecutiveLinkSeqsAndTheCounterKeepsTheLast") {
  // The updates a turn gathers for one peer read that link's counter once and write it once:
  // their seqs must still run on without a gap, from where the link was, and the next message
  // of a later turn continue from the last of them.
  Pair n;
  std::vector<IntentId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(n.Send());
  Pump(n.a, n.b, "node-b");
  const auto before = n.b.Outbox("node-a");  // one update each: intent.received
  REQUIRE(before.size() == 3);
  for (size_t i = 0; i < before.size(); ++i) CHECK(before[i].seq == i + 1);
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               for (int i = 0; i < 3; ++i) {
                 auto d = n.b.engine->DeliverNext(txn, batch, kRemoteAgent);
                 HANDOFF_RETURN_IF_ERROR(d.status());
                 if (!d->has_value()) return Status::NotFound("nothing to deliver");
               }
               return Status::OK();
             })
              .ok());
  CHECK(n.b.last.emitted.at("node-a") == 6);
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->Ack(txn, batch, ids[1], 1, true).status();
             })
              .ok());
  const auto after = n.b.Outbox("node-a");
  REQUIRE(after.size() == 7);
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i].seq == i + 1);
  CHECK(n.b.last.emitted.at("node-a") == 7);
  // Applied in order at the origin: every intent delivered, the second acknowledged.
  CHECK(Pump(n.b, n.a, "node-a") == 7);
  CHECK(n.a.Get(ids[0]).record.status == IntentStatus::kDelivered);
  CHECK(n.a.Get(ids[1]).record.status == IntentStatus::kInProgress);
  CHECK(n.a.Get(ids[2]).record.status == IntentStatus::kDelivered);
}

TEST_CASE("LinkMessagesApplyInOrderAndExactlyOnce") {
  Pair n;
  IntentId first = n.Send();
  IntentId second = n.Send();
  auto entries = n.a.Outbox("node-b");
  REQUIRE(entries.size() == 2);
  // The second arrives first (the first was lost): not applied, the ack stays at 0.
  CHECK(n.b.Receive(entries[1].frame) == 0);
  CHECK(n.b.engine->status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 0);
  // The go-back retransmission applies both in order; a second one changes nothing.
  CHECK(n.b.Receive(entries[0].frame) == 1);
  CHECK(n.b.Receive(entries[1].frame) == 2);
  CHECK(n.b.Receive(entries[0].frame) == 2);
  CHECK(n.b.Receive(entries[1].frame) == 2);
  CHECK(n.b.engine->status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 2);
  CHECK(n.b.Events(first).size() == 1);
  CHECK(n.b.Events(second).size() == 1);
}

TEST_CASE("MessagesAppliedTogetherKeepTheLinksOrderAndStoreItsCounterOnce") {
  // A turn applies every message it received at once (ApplyAll), reading each sender's
  // counter once: out of order, repeated and ahead-of-a-gap messages must come out as they do
  // one by one, and the counter stored must be where the link stands.
  Pair n;
  IntentId ids[3] = {n.Send(), n.Send(), n.Send()};
  auto entries = n.a.Outbox("node-b");
  REQUIRE(entries.size() == 3);
  std::vector<wire::PeerMessage> messages;
  for (int i : {1, 0, 1, 0}) {  // #2 ahead of #1, then #1, #2, and #1 again
    auto msg = wire::DecodePeerMessage(entries[i].frame);
    REQUIRE(msg.ok());
    messages.push_back(std::move(*msg));
  }
  std::map<std::string, uint64_t> acks;
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.peers->ApplyAll(txn, batch, messages, &acks);
             })
              .ok());
  CHECK(acks.at("node-a") == 2);
  CHECK(n.b.Events(ids[0]).size() == 1);  // each applied once
  CHECK(n.b.Events(ids[1]).size() == 1);
  {
    auto txn = n.b.store->BeginRead();
    REQUIRE(txn.ok());
    auto applied = n.b.peers->Applied(*txn, "node-a");
    REQUIRE(applied.ok());
    CHECK(*applied == 2);  // stored, not only reported
  }
  // The next turn continues from the stored counter; a repeat alone changes nothing.
  CHECK(n.b.Receive(entries[1].frame) == 2);
  CHECK(n.b.Receive(entries[2].frame) == 3);
  CHECK(n.b.Events(ids[2]).size() == 1);
  CHECK(n.b.engine->status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 3);
}

TEST_CASE("CancelAtTheOriginReachesTheDestinationAndRefusesALateResult") {
  Pair n;
  IntentId id = n.Send();
  Pump(n.a, n.b, "node-b");
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->DeliverNext(txn, batch, kRemoteAgent).status();
             })
              .ok());
  REQUIRE(n.a.Write([&](Txn& txn, Batch& batch) {
               return n.a.engine->Cancel(txn, batch, id, "operator", "stop").status();
             })
              .ok());
  CHECK(n.a.Get(id).record.status == IntentStatus::kCanceled);
  Pump(n.a, n.b, "node-b");
  CHECK(n.b.Get(id).record.status == IntentStatus::kCanceled);
  CHECK(n.b.Write([&](Txn& txn, Batch& batch) {
             return n.b.engine->Heartbeat(txn, batch, id, 1).status();
           })
            .IsCancelled());
  CHECK(n.b.Write([&](Txn& txn, Batch& batch) {
             return n.b.engine->Complete(txn, batch, id, 1, Payload()).status();
           })
            .IsCancelled());
  // The destination's own canceled event reaches an origin that has already ended it.
  Pump(n.b, n.a, "node-a");
  CHECK(n.a.Get(id).record.status == IntentStatus::kCanceled);
  CHECK(n.a.Get(id).result.empty());
}

TEST_CASE("AForwardStillWaitingWhenTheOriginPurgesItsIntentArrivesWithItsPayload") {
  // The origin stores a forward's payload once, as the intent's blob, and its message without
  // it; a purge while the message waits (the peer away longer than the retention) must not
  // leave the message without its payload.
  Pair n;
  IntentId id = n.Send();
  IntentId other = n.Send();
  REQUIRE(n.a.Write([&](Txn& txn, Batch& batch) {
               return n.a.engine->Cancel(txn, batch, id, "operator", "stop").status();
             })
              .ok());
  REQUIRE(
      n.a.Write([&](Txn& txn, Batch& batch) { return n.a.engine->Purge(txn, batch, id); }).ok());
  auto txn = n.a.store->BeginRead();
  REQUIRE(txn.ok());
  std::string_view gone;
  CHECK(n.a.store->GetBlobView(*txn, id, storage::BlobKind::kPayload, &gone).IsNotFound());
  txn->Abort();

  CHECK(Pump(n.a, n.b, "node-b") == 3);  // both forwards and the cancel
  IntentView at_b = n.b.Get(id);
  CHECK(at_b.record.status == IntentStatus::kCanceled);
  CHECK(Canonical(at_b.payload) == Canonical(Payload()));
  CHECK(Canonical(n.b.Get(other).payload) == Canonical(Payload()));
}

TEST_CASE("AnIntentTheDestinationRefusesFailsAtTheOrigin") {
  ManualClock clock;
  TestNode a("node-a", clock, {{"agent://acme/prod/*", "node-b"}});
  TestNode b("node-b", clock, {}, /*max_payload_bytes=*/1024);
  IntentId id;
  REQUIRE(a.Write([&](Txn& txn, Batch& batch) {
             SendParams p;
             p.intent_type = "intent.big.v1";
             p.to_agent = kRemoteAgent;
             MsgWriter big;
             big.BeginMap();
             big.Field("blob", std::string(4000, 'x'));  // fine for node-a, too big for node-b
             big.EndMap();
             p.payload = big.str();
             auto r = a.engine->Send(txn, batch, p);
             if (r.ok()) id = r->record->id;
             return r.status();
           }).ok());
  CHECK(Pump(a, b, "node-b") == 1);
  CHECK(b.engine->status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 0);
  Pump(b, a, "node-a");
  IntentView v = a.Get(id);
  CHECK(v.record.status == IntentStatus::kFailed);
  REQUIRE(v.record.error.has_value());
  CHECK(v.record.error->code == "rejected_by_node");
  CHECK(v.record.error->message.find("max_payload_bytes") != std::string::npos);
  CHECK(a.Events(id).back().event_type == "intent.rejected");
  CHECK(a.last.settled == std::vector<IntentId>{id});
}

TEST_CASE("AMidWorkQuestionOnTheDestinationIsDecidedOnTheOrigin") {
  Pair n;
  IntentId id = n.Send();
  Pump(n.a, n.b, "node-b");
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->DeliverNext(txn, batch, kRemoteAgent).status();
             })
              .ok());
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine
                   ->RequestApproval(txn, batch, id, 1,
                                     Approval{"Go on?", {}, {}, 0, false, {}, {}, {}, 0})
                   .status();
             })
              .ok());
  Pump(n.b, n.a, "node-a");
  IntentView asked = n.a.Get(id);
  CHECK(asked.record.status == IntentStatus::kWaiting);
  REQUIRE(asked.record.approval.has_value());
  CHECK(asked.record.approval->question == "Go on?");
  REQUIRE(n.a.Write([&](Txn& txn, Batch& batch) {
               return n.a.engine->Decide(txn, batch, id, true, "", "yes", "human:ana").status();
             })
              .ok());
  CHECK(n.a.Write([&](Txn& txn, Batch& batch) {
             return n.a.engine->Decide(txn, batch, id, false, "", "", "human:bo").status();
           })
            .IsConflict());
  Pump(n.a, n.b, "node-b");  // the decision crosses
  CHECK(n.b.Get(id).record.status == IntentStatus::kSubmitted);
  CHECK(n.b.Get(id).record.approval->decided_by == "human:ana");
  Pump(n.b, n.a, "node-a");
  IntentView after = n.a.Get(id);
  CHECK(after.record.status == IntentStatus::kSubmitted);
  CHECK(n.a.Events(id).back().event_type == "intent.approval_granted");
  CHECK(n.a.Events(id).back().node == "node-b");
}

TEST_CASE("AgentCallsAtTheOriginForAForwardedIntentAreRefused") {
  Pair n;
  IntentId id = n.Send();
  Status s = n.a.Write([&](Txn& txn, Batch& batch) {
    return n.a.engine->Complete(txn, batch, id, 0, Payload()).status();
  });
  CHECK(s.IsConflict());
  CHECK(s.message().find("node-b") != std::string::npos);
}

TEST_CASE("RoutePatternsMatchWithStars") {
  CHECK(MatchPattern("agent://acme/prod/*", "agent://acme/prod/worker"));
  CHECK(MatchPattern("agent://acme/*/worker", "agent://acme/prod/worker"));
  CHECK(MatchPattern("agent://*", "agent://a/b/c"));
  CHECK(MatchPattern("agent://acme/prod/worker", "agent://acme/prod/worker"));
  CHECK_FALSE(MatchPattern("agent://acme/prod/*", "agent://acme/lab/worker"));
  CHECK_FALSE(MatchPattern("agent://acme/prod/w", "agent://acme/prod/worker"));
  RouteTable routes("node-a", {{"agent://acme/lab/*", "node-a"}, {"agent://acme/*", "node-b"}});
  CHECK(routes.NodeFor("agent://acme/lab/x").empty());
  CHECK(routes.NodeFor("agent://acme/prod/x") == "node-b");
  CHECK(routes.NodeFor("agent://other/prod/x").empty());
}

}  // namespace
}  // namespace handoff::node
