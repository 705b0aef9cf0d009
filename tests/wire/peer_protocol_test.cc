// wire/: peer messages, and updates in both the shapes the protocol has had (maps; the compact
// forms are in compact_messages_test.cc).

#include "wire/peer_protocol.h"

#include <doctest/doctest.h>

#include <functional>

namespace handoff::wire {
namespace {

EventRecord Event(uint32_t seq, std::string type, IntentStatus status) {
  EventRecord e;
  e.id = NewIntentId(1'700'000'000'000);
  e.seq = seq;
  e.event_type = std::move(type);
  e.status = status;
  e.at_ms = 1'700'000'000'000 + seq;
  e.node = "node-b";
  e.actor = "system";
  return e;
}

// An update message as a node of `version` writes it, with `body` for its body.
std::string Message(uint64_t version, const std::function<void(MsgWriter&)>& body) {
  MsgWriter w;
  w.BeginMap();
  w.Field("v", version);
  w.Field("kind", peer_kind::kUpdate);
  w.Field("from", "node-b");
  w.Field("seq", uint64_t{7});
  w.Key("body");
  w.BeginMap();
  body(w);
  w.EndMap();
  w.EndMap();
  return w.Release();
}

TEST_CASE("AnUpdateCarriesEveryEventOfItsTurnInOrder") {
  RemoteUpdate u;
  u.id = NewIntentId(1'700'000'000'000);
  u.events = {Event(3, "intent.acknowledged", IntentStatus::kAcknowledged),
              Event(4, "intent.in_progress", IntentStatus::kInProgress),
              Event(5, "intent.completed", IntentStatus::kCompleted)};
  u.remote_seq = 5;
  u.status = IntentStatus::kCompleted;
  u.delivery_attempt = 1;
  u.result = "\xa2ok";  // msgpack "ok"
  const std::string frame =
      Message(kPeerProtocolVersion, [&](MsgWriter& w) { WriteRemoteUpdate(w, u); });

  auto msg = DecodePeerMessage(frame);
  REQUIRE(msg.ok());
  REQUIRE(msg->body != nullptr);
  auto read = ReadRemoteUpdate(*msg->body, msg->from);
  REQUIRE(read.ok());
  CHECK(read->id == u.id);
  CHECK(read->remote_seq == 5);
  CHECK(read->status == IntentStatus::kCompleted);
  CHECK(read->result == u.result);
  REQUIRE(read->events.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(read->events[i].seq == u.events[i].seq);
    CHECK(read->events[i].event_type == u.events[i].event_type);
    CHECK(read->events[i].status == u.events[i].status);
    CHECK(read->events[i].at_ms == u.events[i].at_ms);
  }
}

TEST_CASE("AVersionOneUpdateWithOneEventIsStillRead") {
  const IntentId id = NewIntentId(1'700'000'000'000);
  const EventRecord e = Event(2, "intent.delivered", IntentStatus::kDelivered);
  const std::string frame = Message(1, [&](MsgWriter& w) {
    w.Field("intent_id", id.ToText().view());
    w.Field("remote_seq", uint64_t{2});
    w.Key("event");
    w.BeginMap();
    WriteEventFields(w, e);
    w.EndMap();
    w.Field("status", "DELIVERED");
    w.Field("delivery_attempt", uint64_t{1});
  });
  auto msg = DecodePeerMessage(frame);
  REQUIRE(msg.ok());
  auto read = ReadRemoteUpdate(*msg->body, msg->from);
  REQUIRE(read.ok());
  REQUIRE(read->events.size() == 1);
  CHECK(read->events[0].event_type == "intent.delivered");
  CHECK(read->status == IntentStatus::kDelivered);
}

TEST_CASE("AnUpdateWithoutEventsOrOfAnUnknownVersionIsRefused") {
  const IntentId id = NewIntentId(1'700'000'000'000);
  auto header = [&](MsgWriter& w) {
    w.Field("intent_id", id.ToText().view());
    w.Field("remote_seq", uint64_t{2});
    w.Field("status", "DELIVERED");
  };
  SUBCASE("no event at all") {
    auto msg = DecodePeerMessage(Message(kPeerProtocolVersion, header));
    REQUIRE(msg.ok());
    auto read = ReadRemoteUpdate(*msg->body, msg->from);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().message().find("without an event") != std::string::npos);
  }
  SUBCASE("an empty list") {
    auto msg = DecodePeerMessage(Message(kPeerProtocolVersion, [&](MsgWriter& w) {
      header(w);
      w.Key("events");
      w.BeginArray();
      w.EndArray();
    }));
    REQUIRE(msg.ok());
    CHECK_FALSE(ReadRemoteUpdate(*msg->body, msg->from).ok());
  }
  SUBCASE("events that are not a list") {
    auto msg = DecodePeerMessage(Message(kPeerProtocolVersion, [&](MsgWriter& w) {
      header(w);
      w.Field("events", "intent.delivered");
    }));
    REQUIRE(msg.ok());
    auto read = ReadRemoteUpdate(*msg->body, msg->from);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().message().find("events") != std::string::npos);
  }
  SUBCASE("an event that is not a map") {
    auto msg = DecodePeerMessage(Message(kPeerProtocolVersion, [&](MsgWriter& w) {
      header(w);
      w.Key("events");
      w.BeginArray();
      w.Uint(3);
      w.EndArray();
    }));
    REQUIRE(msg.ok());
    CHECK_FALSE(ReadRemoteUpdate(*msg->body, msg->from).ok());
  }
  SUBCASE("a version from the future") {
    auto msg = DecodePeerMessage(Message(kPeerProtocolVersion + 1, header));
    REQUIRE_FALSE(msg.ok());
    CHECK(msg.status().message().find("unsupported peer protocol version") != std::string::npos);
  }
  SUBCASE("version zero") { CHECK_FALSE(DecodePeerMessage(Message(0, header)).ok()); }
}

TEST_CASE("PeerBatchesAreTheirMessagesInOrderOrRefusedWhole") {
  auto data = [](uint64_t seq) {
    PeerMessageBuilder b(peer_kind::kControl, "node-a", seq);
    b.w().Field("action", "cancel");
    return b.Finish();
  };
  const std::string one = data(1), two = data(2), three = data(3);
  auto msgs = DecodePeerMessages(JoinArray({one, two, three}));
  REQUIRE(msgs.ok());
  REQUIRE(msgs->size() == 3);
  for (uint64_t i = 0; i < 3; ++i) {
    CHECK((*msgs)[i].seq == i + 1);
    CHECK((*msgs)[i].from == "node-a");
    REQUIRE((*msgs)[i].body != nullptr);
    CHECK(MapReader::From(*(*msgs)[i].body, "body").ok());
  }
  auto alone = DecodePeerMessages(one);
  REQUIRE(alone.ok());
  CHECK(alone->size() == 1);
  // One bad message spoils the batch: it comes again with the retransmission.
  auto bad = DecodePeerMessages(JoinArray({one, std::string_view("\x05", 1), three}));
  CHECK(bad.status().message().find("message 1 of a batch") != std::string::npos);
  CHECK(DecodePeerMessages(std::string("\x90", 1)).status().IsInvalidArgument());
  std::string too_many;
  AppendArrayHeader(kMaxPeerBatchItems + 1, &too_many);
  CHECK(DecodePeerMessages(too_many).status().IsInvalidArgument());
}

TEST_CASE("PingsAndAcksSayWhetherTheirSenderReadsBatchesAndCompactUpdates") {
  auto ping = DecodePeerMessage(EncodePeerPing("node-a", 7));
  REQUIRE(ping.ok());
  CHECK(ping->features.batches);
  CHECK(ping->features.compact_messages);
  auto ack = DecodePeerMessage(EncodePeerAck("node-a", 7, 3));
  REQUIRE(ack.ok());
  CHECK(ack->features.batches);
  CHECK(ack->features.compact_messages);
  auto old = DecodePeerMessage(EncodePeerAck("node-a", 7, 3, PeerFeatures{}));
  REQUIRE(old.ok());
  CHECK_FALSE(old->features.batches);
  CHECK_FALSE(old->features.compact_messages);
  CHECK(old->acked == 3);
  auto batches_only = DecodePeerMessage(EncodePeerAck("node-a", 7, 3, PeerFeatures{true, false}));
  REQUIRE(batches_only.ok());
  CHECK(batches_only->features.batches);
  CHECK_FALSE(batches_only->features.compact_messages);
}

TEST_CASE("OnlyIntentsAndUpdatesMayHaveAnArrayForTheirBody") {
  for (std::string_view kind : {peer_kind::kIntent, peer_kind::kUpdate, peer_kind::kControl}) {
    CAPTURE(kind);
    PeerMessageBuilder b(kind, "node-a", 1, PeerMessageBuilder::Body::kArray);
    b.w().Uint(1);
    auto msg = DecodePeerMessage(b.Finish());
    if (kind == peer_kind::kControl) {
      REQUIRE_FALSE(msg.ok());
      CHECK(msg.status().message().find("body map") != std::string::npos);
    } else {
      CHECK(msg.ok());  // read by its kind's reader, which refuses one this short
    }
  }
}

}  // namespace
}  // namespace handoff::wire
