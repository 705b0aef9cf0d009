// Updates a destination holds for the origin (EngineOptions::update_delay_ms, [node]
// update_delay): news that an agent holds an intent waits for the intent's next change and goes
// with it as one update, or goes alone once due; a restart or a failed turn finds it again in
// the store. The network is taken out, as in forwarding_test.cc: real LMDB stores, a manual
// clock.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "node/forwarding_fixture.h"

namespace handoff::node {
namespace {

constexpr int64_t kDelayMs = 50;

// node-a sends to node-b, which holds its updates for kDelayMs.
struct HoldingPair {
  ManualClock clock;
  TestNode a{"node-a", clock, {{"agent://acme/prod/*", "node-b"}}};
  TestNode b{"node-b", clock, {}, 1 << 20, kDelayMs};

  // Sends one intent, has node-b take it (its "received" update goes at once) and deliver it.
  IntentId SendAndDeliver() {
    const IntentId id = SendRemote(a);
    Pump(a, b, "node-b");
    REQUIRE(b.Write([&](Txn& txn, Batch& batch) {
               auto d = b.engine->DeliverNext(txn, batch, kRemoteAgent);
               HANDOFF_RETURN_IF_ERROR(d.status());
               return d->has_value() ? Status::OK() : Status::NotFound("nothing delivered");
             }).ok());
    return id;
  }
};

// The event types of every update in `frames`, one list per update.
std::vector<std::vector<std::string>> UpdateEvents(const std::vector<TestNode::Shipped>& frames) {
  std::vector<std::vector<std::string>> out;
  for (const auto& entry : frames) {
    auto msg = wire::DecodePeerMessage(entry.frame);
    REQUIRE(msg.ok());
    REQUIRE(msg->kind == wire::peer_kind::kUpdate);
    auto u = wire::ReadRemoteUpdate(*msg->body, msg->from);
    REQUIRE(u.ok());
    std::vector<std::string> types;
    for (const EventRecord& e : u->events) types.push_back(e.event_type);
    out.push_back(types);
  }
  return out;
}

std::vector<std::string> History(TestNode& node, const IntentId& id) {
  std::vector<std::string> types;
  for (const EventRecord& e : node.Events(id)) types.push_back(e.event_type);
  return types;
}

TEST_CASE("ADeliveryIsHeldAndGoesWithTheCompletionAsOneUpdate") {
  HoldingPair n;
  const IntentId id = n.SendAndDeliver();
  // Only the update with intent.received left; the delivery waits, due kDelayMs from now.
  CHECK(n.b.Outbox("node-a").size() == 1);
  CHECK(n.b.engine->held_updates() == 1);
  REQUIRE(n.b.engine->NextTimer().has_value());
  CHECK(*n.b.engine->NextTimer() == n.clock.NowMs() + kDelayMs);
  CHECK_FALSE(n.b.engine->TimerDue());
  Pump(n.b, n.a, "node-a");
  CHECK(n.a.Get(id).record.status == IntentStatus::kSubmitted);

  // Acknowledged and started: still only news that an agent holds it, held with the delivery.
  n.clock.Advance(10);
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->Ack(txn, batch, id, 1, true).status();
             })
              .ok());
  CHECK(n.b.Outbox("node-a").size() == 1);
  CHECK(n.b.engine->held_updates() == 1);
  CHECK(*n.b.engine->NextTimer() == n.clock.NowMs() - 10 + kDelayMs);  // not put off

  // The completion takes them all: one update, the events in order.
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->Complete(txn, batch, id, 1, Payload()).status();
             })
              .ok());
  CHECK(n.b.engine->held_updates() == 0);
  const auto shipped = n.b.Outbox("node-a");
  REQUIRE(shipped.size() == 2);
  CHECK(UpdateEvents({shipped[1]}) ==
        std::vector<std::vector<std::string>>{
            {"intent.delivered", "intent.acknowledged", "intent.in_progress", "intent.completed"}});
  Pump(n.b, n.a, "node-a");
  CHECK(n.a.Get(id).record.status == IntentStatus::kCompleted);
  CHECK(History(n.a, id) == std::vector<std::string>{"intent.created", "intent.submitted",
                                                     "intent.received", "intent.delivered",
                                                     "intent.acknowledged", "intent.in_progress",
                                                     "intent.completed"});
  // The replica notes what its origin was sent: a restart finds nothing to send again.
  CHECK(n.b.Get(id).record.remote_seq == n.b.Get(id).record.seq);
  n.b.Restart();
  CHECK(n.b.engine->held_updates() == 0);
}

TEST_CASE("AHeldUpdateGoesAloneWhenDue") {
  HoldingPair n;
  const IntentId id = n.SendAndDeliver();
  n.clock.Advance(kDelayMs - 1);
  CHECK_FALSE(n.b.engine->TimerDue());
  n.clock.Advance(1);
  CHECK(n.b.engine->TimerDue());
  // A turn with nothing else to do sends it.
  REQUIRE(n.b.Write([](Txn&, Batch&) { return Status::OK(); }).ok());
  CHECK(n.b.engine->held_updates() == 0);
  CHECK_FALSE(n.b.engine->NextTimer().has_value());
  const auto shipped = n.b.Outbox("node-a");
  REQUIRE(shipped.size() == 2);
  CHECK(UpdateEvents({shipped[1]}) == std::vector<std::vector<std::string>>{{"intent.delivered"}});
  Pump(n.b, n.a, "node-a");
  CHECK(n.a.Get(id).record.status == IntentStatus::kDelivered);

  // A later change is not held past the same kind of news again: the next is held anew.
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->Ack(txn, batch, id, 1, true).status();
             })
              .ok());
  CHECK(n.b.engine->held_updates() == 1);
  CHECK(n.b.Outbox("node-a").size() == 2);
}

TEST_CASE("AHeldUpdateIsFoundAgainAfterARestartAndSentAtOnce") {
  HoldingPair n;
  const IntentId id = n.SendAndDeliver();
  Pump(n.b, n.a, "node-a");  // intent.received
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               return n.b.engine->Ack(txn, batch, id, 1, true).status();
             })
              .ok());
  CHECK(n.b.engine->held_updates() == 1);
  CHECK(n.b.Outbox("node-a").size() == 1);

  // The held update lived in memory only; the store says what the origin was not sent.
  n.b.Restart();
  CHECK(n.b.engine->held_updates() == 1);
  CHECK(n.b.engine->TimerDue());  // due at once
  REQUIRE(n.b.Write([](Txn&, Batch&) { return Status::OK(); }).ok());
  const auto shipped = n.b.Outbox("node-a");
  REQUIRE(shipped.size() == 2);
  CHECK(UpdateEvents({shipped[1]}) ==
        std::vector<std::vector<std::string>>{
            {"intent.delivered", "intent.acknowledged", "intent.in_progress"}});
  Pump(n.b, n.a, "node-a");
  CHECK(n.a.Get(id).record.status == IntentStatus::kInProgress);
  CHECK(History(n.a, id) == std::vector<std::string>{"intent.created", "intent.submitted",
                                                     "intent.received", "intent.delivered",
                                                     "intent.acknowledged", "intent.in_progress"});
  n.b.Restart();
  CHECK(n.b.engine->held_updates() == 0);
}

TEST_CASE("AHeldUpdateOutlivesAFailedTurn") {
  HoldingPair n;
  const IntentId id = n.SendAndDeliver();
  CHECK(n.b.engine->held_updates() == 1);
  // A turn that fails is rolled back, the in-memory state rebuilt from the store.
  CHECK_FALSE(n.b.Write([](Txn&, Batch&) { return Status::IOError("injected"); }).ok());
  CHECK(n.b.engine->held_updates() == 1);
  REQUIRE(n.b.Write([](Txn&, Batch&) { return Status::OK(); }).ok());
  const auto shipped = n.b.Outbox("node-a");
  REQUIRE(shipped.size() == 2);
  CHECK(UpdateEvents({shipped[1]}) == std::vector<std::vector<std::string>>{{"intent.delivered"}});
  Pump(n.b, n.a, "node-a");
  CHECK(n.a.Get(id).record.status == IntentStatus::kDelivered);
}

TEST_CASE("OnlyNewsThatAnAgentHoldsTheIntentIsHeld") {
  HoldingPair n;
  const IntentId id = n.SendAndDeliver();
  // A failure the agent may retry puts it back in the queue (SUBMITTED): that goes at once,
  // with the held delivery before it.
  REQUIRE(n.b.Write([&](Txn& txn, Batch& batch) {
               ErrorInfo error{"flaky", "try again", true};
               return n.b.engine->Fail(txn, batch, id, 1, error).status();
             })
              .ok());
  CHECK(n.b.engine->held_updates() == 0);
  const auto shipped = n.b.Outbox("node-a");
  REQUIRE(shipped.size() == 2);
  const auto events = UpdateEvents({shipped[1]});
  REQUIRE(events.size() == 1);
  REQUIRE(events[0].size() >= 2);
  CHECK(events[0][0] == "intent.delivered");
  Pump(n.b, n.a, "node-a");
  CHECK_FALSE(IsLeased(n.a.Get(id).record.status));
}

}  // namespace
}  // namespace handoff::node
