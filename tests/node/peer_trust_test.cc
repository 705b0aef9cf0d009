// What a peer may send, checked without a network: a forwarded intent meets the limits a local
// send meets, field by field; an update goes through the lifecycle table and cannot wrap an
// intent's event numbers; updates and controls for intents that are not the sender's change
// nothing. Real LMDB stores, a manual clock (node/forwarding_fixture.h).

#include <doctest/doctest.h>

#include <climits>
#include <cmath>

#include "node/forwarding_fixture.h"
#include "support/peer_messages.h"

namespace handoff::node {
namespace {

Approval LongQuestion() {
  Approval a;
  a.question = std::string(5000, 'q');
  return a;
}

using testing::ControlFrame;
using testing::IntentFrame;
using testing::UpdateFrame;

// An intent as node-a would forward it to node-b.
IntentRecord Forwarded() { return testing::ForwardableIntent(kRemoteAgent, "node-a"); }

wire::RemoteUpdate Update(const IntentId& id, const std::string& node,
                          const std::vector<IntentStatus>& statuses, uint32_t first = 2) {
  return testing::StatusUpdate(id, node, statuses, first);
}

TEST_CASE("AForwardedIntentIsHeldToTheLimitsOfALocalSendAndTheRefusalNamesTheField") {
  ManualClock clock;
  TestNode b("node-b", clock, {{"agent://acme/elsewhere/*", "node-c"}}, /*max_payload=*/4096);
  auto check = [&](const IntentRecord& r, std::string_view payload = Payload(),
                   std::string_view checkpoint = {}) {
    return b.peers->CheckIntent("node-a", r, payload, checkpoint);
  };
  CHECK(check(Forwarded()).ok());
  IntentRecord no_lease = Forwarded();
  no_lease.lease_ms = 0;  // the node default
  CHECK(check(no_lease).ok());

  struct Case {
    const char* field;
    std::function<void(IntentRecord&)> spoil;
  };
  const std::vector<Case> cases = {
      {"origin_node", [](IntentRecord& r) { r.origin_node = std::string(600, 'x'); }},
      {"origin_node", [](IntentRecord& r) { r.origin_node = "node-c"; }},
      {"intent_id", [](IntentRecord& r) { r.id = IntentId(); }},
      {"intent_type", [](IntentRecord& r) { r.intent_type = "do-it"; }},
      {"to_agent", [](IntentRecord& r) { r.to_agent = "agent://acme/" + std::string(300, 'x'); }},
      {"to_agent", [](IntentRecord& r) { r.to_agent = "agent://acme/elsewhere/worker"; }},
      {"from_agent", [](IntentRecord& r) { r.from_agent = "mailto:someone"; }},
      {"reply_to", [](IntentRecord& r) { r.reply_to = "agent://a/b"; }},
      {"correlation_id", [](IntentRecord& r) { r.correlation_id = std::string(256, 'c'); }},
      {"idempotency_key", [](IntentRecord& r) { r.idempotency_key = std::string(256, 'k'); }},
      {"parent_id", [](IntentRecord& r) { r.parent_id = "not-an-id"; }},
      {"replay_of", [](IntentRecord& r) { r.replay_of = "not-an-id"; }},
      {"lease_ms", [](IntentRecord& r) { r.lease_ms = 50; }},
      {"lease_ms", [](IntentRecord& r) { r.lease_ms = 100LL * 365 * 24 * 3600 * 1000; }},
      {"deadline", [](IntentRecord& r) { r.deadline_ms = -5; }},
      {"deadline", [](IntentRecord& r) { r.deadline_ms = INT64_MAX; }},
      {"created_at", [](IntentRecord& r) { r.created_at_ms = INT64_MIN; }},
      {"max_attempts", [](IntentRecord& r) { r.max_attempts = UINT32_MAX; }},
      {"retry_initial_ms", [](IntentRecord& r) { r.retry_initial_ms = INT64_MAX; }},
      {"retry_initial_ms", [](IntentRecord& r) { r.retry_initial_ms = -1; }},
      {"retry_multiplier", [](IntentRecord& r) { r.retry_multiplier = 0.5; }},
      {"retry_multiplier", [](IntentRecord& r) { r.retry_multiplier = std::nan(""); }},
      {"retry_multiplier", [](IntentRecord& r) { r.retry_multiplier = 1e300; }},
      {"retry_max_ms", [](IntentRecord& r) { r.retry_max_ms = 8LL * 24 * 3600 * 1000; }},
      {"approval", [](IntentRecord& r) { r.approval = LongQuestion(); }},
  };
  for (const Case& c : cases) {
    IntentRecord r = Forwarded();
    c.spoil(r);
    Status s = check(r);
    CAPTURE(c.field);
    CAPTURE(s.ToString());
    CHECK(s.IsInvalidArgument());
    CHECK(s.message().rfind(std::string(c.field) + ": ", 0) == 0);
  }
  MsgWriter big;
  big.BeginMap();
  big.Field("blob", std::string(5000, 'x'));
  big.EndMap();
  CHECK(check(Forwarded(), big.str()).message().rfind("payload: ", 0) == 0);
  CHECK(check(Forwarded(), Payload(), big.str()).message().rfind("checkpoint: ", 0) == 0);
}

TEST_CASE("ARefusedIntentNeverReachesTheBatchAndItsOriginLearnsWhy") {
  Pair n;
  IntentRecord r = Forwarded();
  r.origin_node = std::string(600, 'x');  // once failed every batch that carried it
  n.b.Receive(IntentFrame("node-a", 1, r));
  CHECK(n.b.peers->refused("node-a") == 1);
  CHECK(n.b.engine->status_counts()[static_cast<size_t>(IntentStatus::kSubmitted)] == 0);
  // The rejection goes back to node-a as a FAILED update naming the field; nothing else.
  auto out = n.b.Outbox("node-a");
  REQUIRE(out.size() == 1);
  auto msg = wire::DecodePeerMessage(out[0].frame);
  REQUIRE(msg.ok());
  auto update = wire::ReadRemoteUpdate(*msg->body, msg->from);
  REQUIRE(update.ok());
  CHECK(update->id == r.id);
  CHECK(update->status == IntentStatus::kFailed);
  CHECK(update->error->code == "rejected_by_node");
  CHECK(update->error->message.find("origin_node: ") != std::string::npos);
  // The link goes on: the next intent, numbered 2, is stored.
  IntentRecord fine = Forwarded();
  CHECK(n.b.Receive(IntentFrame("node-a", 2, fine)) == 2);
  CHECK(n.b.Get(fine.id).record.origin_node == "node-a");
}

TEST_CASE("UpdatesGoThroughTheLifecycleTableAndCannotWrapTheEventSeq") {
  Pair n;
  IntentId id = n.Send();
  Pump(n.a, n.b, "node-b");
  const IntentView before = n.a.Get(id);
  REQUIRE(before.record.status == IntentStatus::kSubmitted);

  // SUBMITTED cannot become ACKNOWLEDGED without a delivery.
  n.a.Receive(UpdateFrame("node-b", 1, Update(id, "node-b", {IntentStatus::kAcknowledged})));
  CHECK(n.a.peers->refused("node-b") == 1);
  CHECK(n.a.Get(id).record.status == IntentStatus::kSubmitted);
  CHECK(n.a.Get(id).record.seq == before.record.seq);
  // Nor may a history claim events recorded on another node.
  n.a.Receive(UpdateFrame("node-b", 2, Update(id, "node-c", {IntentStatus::kDelivered})));
  CHECK(n.a.peers->refused("node-b") == 2);
  // A lawful sequence is applied: delivered, in progress, completed.
  n.a.Receive(UpdateFrame(
      "node-b", 3,
      Update(id, "node-b",
             {IntentStatus::kDelivered, IntentStatus::kInProgress, IntentStatus::kCompleted})));
  CHECK(n.a.peers->refused("node-b") == 2);
  CHECK(n.a.Get(id).record.status == IntentStatus::kCompleted);
  CHECK(n.a.Get(id).record.seq == before.record.seq + 3);

  // An intent whose events are numbered near 2^32 takes no update that would wrap them.
  IntentId other = n.Send();
  Pump(n.a, n.b, "node-b");
  IntentRecord near_end = n.a.Get(other).record;
  near_end.seq = UINT32_MAX - 1;
  REQUIRE(n.a.Write([&](Txn& txn, Batch&) { return n.a.store->PutIntent(txn, near_end); }).ok());
  REQUIRE(n.a.engine->Rollback().ok());  // drop the cached copy
  n.a.Receive(UpdateFrame(
      "node-b", 4,
      Update(other, "node-b", {IntentStatus::kDelivered, IntentStatus::kInProgress}, 10)));
  CHECK(n.a.peers->refused("node-b") == 3);
  CHECK(n.a.Get(other).record.seq == UINT32_MAX - 1);
  // One more event fits; after it, even a local cancel is refused rather than wrapping.
  n.a.Receive(UpdateFrame("node-b", 5, Update(other, "node-b", {IntentStatus::kDelivered}, 10)));
  CHECK(n.a.Get(other).record.seq == UINT32_MAX);
  Status cancel = n.a.Write([&](Txn& txn, Batch& batch) {
    return n.a.engine->Cancel(txn, batch, other, "operator", "").status();
  });
  CHECK(cancel.IsConflict());
  // (The record was numbered near the end by hand, so only the events after that are there.)
  const auto last = n.a.Events(other, UINT32_MAX - 1);
  REQUIRE(last.size() == 1);
  CHECK(last[0].seq == UINT32_MAX);
}

TEST_CASE("APeerCannotUpdateOrControlIntentsThatAreNotItsOwn") {
  ManualClock clock;
  TestNode a("node-a", clock, {{"agent://acme/prod/*", "node-b"}});
  TestNode b("node-b", clock, {});
  IntentId id = SendRemote(a);
  Pump(a, b, "node-b");
  // node-c completes node-a's intent on node-a: node-a forwarded it to node-b, not node-c.
  wire::RemoteUpdate forged = Update(id, "node-c", {IntentStatus::kCompleted});
  forged.result = Payload();
  a.Receive(UpdateFrame("node-c", 1, forged));
  CHECK(a.peers->refused("node-c") == 1);
  CHECK(a.Get(id).record.status == IntentStatus::kSubmitted);
  CHECK(a.Get(id).result.empty());
  // ... and an intent nobody has.
  a.Receive(UpdateFrame("node-c", 2, Update(NewIntentId(1), "node-c", {IntentStatus::kFailed})));
  CHECK(a.peers->refused("node-c") == 2);
  // node-c cancels on node-b the intent node-a forwarded there.
  CHECK(b.Receive(ControlFrame("node-c", 1, id.ToString(), "cancel")) == 1);
  CHECK(b.peers->refused("node-c") == 1);
  CHECK(b.Get(id).record.status == IntentStatus::kSubmitted);
  // The owner's own cancel still works.
  b.Receive(ControlFrame("node-a", 2, id.ToString(), "cancel"));
  CHECK(b.Get(id).record.status == IntentStatus::kCanceled);
  CHECK(b.peers->refused("node-a") == 0);
}

TEST_CASE("WhatAPeerSendsMustBeShowableAsJson") {
  Pair n;
  // An intent whose payload holds binary: refused, and its origin told which value.
  MsgWriter binary;
  binary.BeginMap();
  binary.Key("blob");
  binary.Raw(std::string("\xc4\x02\x00\x01", 4));  // bin 8, two bytes
  binary.EndMap();
  IntentRecord r = Forwarded();
  n.b.Receive(IntentFrame("node-a", 1, r, binary.str()));
  CHECK(n.b.peers->refused("node-a") == 1);
  auto out = n.b.Outbox("node-a");
  REQUIRE(out.size() == 1);
  auto msg = wire::DecodePeerMessage(out[0].frame);
  REQUIRE(msg.ok());
  auto update = wire::ReadRemoteUpdate(*msg->body, msg->from);
  REQUIRE(update.ok());
  CHECK(update->error->code == "rejected_by_node");
  CHECK(update->error->message.find("payload.blob: binary") != std::string::npos);

  // An update whose result has an integer key, or a NaN: refused, the intent unchanged.
  IntentId id = n.Send();
  Pump(n.a, n.b, "node-b");
  const IntentView before = n.a.Get(id);
  wire::RemoteUpdate done =
      Update(id, "node-b",
             {IntentStatus::kDelivered, IntentStatus::kInProgress, IntentStatus::kCompleted});
  done.result = std::string("\x81\x01\xa1x", 4);  // {1: "x"}
  n.a.Receive(UpdateFrame("node-b", 1, done));
  CHECK(n.a.peers->refused("node-b") == 1);
  done.result = std::string("\x81\xa1n\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 12);  // {"n": NaN}
  n.a.Receive(UpdateFrame("node-b", 2, done));
  CHECK(n.a.peers->refused("node-b") == 2);
  CHECK(n.a.Get(id).record.seq == before.record.seq);
  CHECK(n.a.Get(id).result.empty());
  // The same update with a showable result is applied.
  done.result = Payload();
  n.a.Receive(UpdateFrame("node-b", 3, done));
  CHECK(n.a.peers->refused("node-b") == 2);
  CHECK(n.a.Get(id).record.status == IntentStatus::kCompleted);
}

TEST_CASE("ALocalSendIsHeldToTheSameBounds") {
  Pair n;
  auto send = [&](const std::function<void(SendParams&)>& spoil) {
    return n.a.Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.local.v1";
      p.to_agent = "agent://acme/lab/worker";
      p.payload = Payload();
      spoil(p);
      return n.a.engine->Send(txn, batch, p).status();
    });
  };
  CHECK(send([](SendParams&) {}).ok());
  CHECK(send([](SendParams& p) { p.retry_initial_ms = INT64_MAX; })
            .message()
            .rfind("retry_initial_ms: ", 0) == 0);
  CHECK(send([](SendParams& p) { p.retry_max_ms = INT64_MAX; })
            .message()
            .rfind("retry_max_ms: ", 0) == 0);
  CHECK(send([](SendParams& p) { p.deadline_ms = INT64_MAX; }).message().rfind("deadline: ", 0) ==
        0);
  CHECK(send([](SendParams& p) { p.lease_ms = 100LL * 365 * 24 * 3600 * 1000; })
            .message()
            .rfind("lease_ms: ", 0) == 0);
  CHECK(send([](SendParams& p) { p.approval = LongQuestion(); }).message().rfind("approval: ", 0) ==
        0);
  // A question with 100 outcomes, as request_approval refuses one.
  Status many = send([](SendParams& p) {
    Approval a;
    a.question = "which?";
    for (int i = 0; i < 100; ++i) a.outcomes.push_back(std::to_string(1000 + i));
    p.approval = a;
  });
  CHECK(many.message() == "approval: more than 16 outcomes");
}

}  // namespace
}  // namespace handoff::node
