// wire/: the compact intents and updates (docs/protocol.md, "Compact messages"): each reads
// as the message it was written from, and as the map it is rewritten to for an older node;
// every malformed element is refused by name.

#include <doctest/doctest.h>

#include <functional>

#include "support/peer_messages.h"
#include "wire/agent_protocol.h"
#include "wire/peer_protocol.h"

namespace handoff::wire {
namespace {

// `frame` (one compact message) with element `at` of its body written by `bad` instead.
std::string WithElement(const std::string& frame, size_t at,
                        const std::function<void(MsgWriter&)>& bad) {
  auto decoded = DecodePeerMessage(frame);
  REQUIRE(decoded.ok());
  const msgpack::object_array& elements = decoded->body->via.array;
  PeerMessageBuilder b(decoded->kind, decoded->from, decoded->seq,
                       PeerMessageBuilder::Body::kArray);
  for (size_t i = 0; i < elements.size; ++i) {
    if (i == at) {
      bad(b.w());
    } else {
      b.w().Raw(Pack(elements.ptr[i]));
    }
  }
  return b.Finish();
}

std::string CompactIntentFrame(const IntentRecord& r, std::string_view payload,
                               std::string_view checkpoint) {
  PeerMessageBuilder b(peer_kind::kIntent, "node-a", 9, PeerMessageBuilder::Body::kArray);
  WriteCompactIntent(b.w(), r, payload, checkpoint);
  return b.Finish();
}

// An update with every field set, and events with and without details.
RemoteUpdate FullUpdate() {
  RemoteUpdate u = testing::StatusUpdate(NewIntentId(1'700'000'000'000), "node-b",
                                         {IntentStatus::kWaiting, IntentStatus::kFailed}, 3);
  u.events[0].details = "\x81\xa6reason\xa5HUMAN";  // {"reason": "HUMAN"}
  u.events[1].actor = "agent://acme/worker/1";
  u.remote_seq = 4;
  u.status = IntentStatus::kFailed;
  u.delivery_attempt = 4'000'000'000;
  u.waiting_reason = "HUMAN";
  u.error = ErrorInfo{"boom", "it broke", true};
  u.last_error = ErrorInfo{"earlier", "before", false};
  Approval a;
  a.question = "ship it?";
  a.outcomes = {"yes", "no"};
  a.requested_by = "agent://acme/worker/1";
  a.requested_at_ms = 1'700'000'000'123;
  a.mid_work = true;
  a.decision = "yes";
  a.comment = "fine";
  a.decided_by = "human://ops";
  a.decided_at_ms = 1'700'000'000'456;
  u.approval = a;
  u.has_checkpoint = true;
  u.checkpoint = "\x81\xa4step\x03";  // {"step": 3}
  u.result = "\x92\x01\xa1x";         // [1, "x"]
  return u;
}

void CheckSameUpdate(const RemoteUpdate& read, const RemoteUpdate& u, std::string_view sender) {
  CHECK(read.id == u.id);
  CHECK(read.remote_seq == u.remote_seq);
  CHECK(read.status == u.status);
  CHECK(read.delivery_attempt == u.delivery_attempt);
  CHECK(read.waiting_reason == u.waiting_reason);
  CHECK(read.error == u.error);
  CHECK(read.last_error == u.last_error);
  REQUIRE(read.approval.has_value() == u.approval.has_value());
  if (u.approval) {
    CHECK(read.approval->question == u.approval->question);
    CHECK(read.approval->outcomes == u.approval->outcomes);
    CHECK(read.approval->requested_by == u.approval->requested_by);
    CHECK(read.approval->requested_at_ms == u.approval->requested_at_ms);
    CHECK(read.approval->mid_work == u.approval->mid_work);
    CHECK(read.approval->decision == u.approval->decision);
    CHECK(read.approval->comment == u.approval->comment);
    CHECK(read.approval->decided_by == u.approval->decided_by);
    CHECK(read.approval->decided_at_ms == u.approval->decided_at_ms);
  }
  CHECK(read.has_checkpoint == u.has_checkpoint);
  CHECK(read.checkpoint == u.checkpoint);
  CHECK(read.result == u.result);
  REQUIRE(read.events.size() == u.events.size());
  for (size_t i = 0; i < u.events.size(); ++i) {
    CAPTURE(i);
    CHECK(read.events[i].id == u.id);
    CHECK(read.events[i].seq == u.events[i].seq);
    CHECK(read.events[i].event_type == u.events[i].event_type);
    CHECK(read.events[i].status == u.events[i].status);
    CHECK(read.events[i].at_ms == u.events[i].at_ms);
    CHECK(read.events[i].node == sender);
    CHECK(read.events[i].actor == u.events[i].actor);
    CHECK(read.events[i].details == u.events[i].details);
  }
}

std::string CompactFrame(const RemoteUpdate& u) {
  PeerMessageBuilder b(peer_kind::kUpdate, "node-b", 7, PeerMessageBuilder::Body::kArray);
  WriteCompactUpdate(b.w(), u);
  return b.Finish();
}

TEST_CASE("ACompactUpdateReadsAsTheUpdateItWasAndRewritesToTheSameMap") {
  const RemoteUpdate u = FullUpdate();
  const std::string compact = CompactFrame(u);
  auto msg = DecodePeerMessage(compact);
  REQUIRE(msg.ok());
  REQUIRE(msg->body->type == msgpack::type::ARRAY);
  auto read = ReadRemoteUpdate(*msg->body, msg->from);
  REQUIRE(read.ok());
  CheckSameUpdate(*read, u, "node-b");

  // For a node that does not read it: the same message, its update a map.
  auto verbose = VerboseFrame(compact);
  REQUIRE(verbose.ok());
  REQUIRE(verbose->has_value());
  auto as_map = DecodePeerMessage(**verbose);
  REQUIRE(as_map.ok());
  CHECK(as_map->kind == peer_kind::kUpdate);
  CHECK(as_map->from == "node-b");
  CHECK(as_map->seq == 7);
  REQUIRE(as_map->body->type == msgpack::type::MAP);
  auto reread = ReadRemoteUpdate(*as_map->body, as_map->from);
  REQUIRE(reread.ok());
  CheckSameUpdate(*reread, u, "node-b");
  PeerMessageBuilder map_form(peer_kind::kUpdate, "node-b", 7);
  WriteRemoteUpdate(map_form.w(), u);
  const std::string map_frame = map_form.Finish();
  CHECK(**verbose == map_frame);
  // What is already a map, and what is not an update, goes as it is.
  auto same = VerboseFrame(map_frame);
  REQUIRE(same.ok());
  CHECK_FALSE(same->has_value());
  PeerMessageBuilder control(peer_kind::kControl, "node-a", 3);
  control.w().Field("action", "cancel");
  auto not_update = VerboseFrame(control.Finish());
  REQUIRE(not_update.ok());
  CHECK_FALSE(not_update->has_value());
  CHECK_FALSE(VerboseFrame("\x05").ok());

  // The point of it: the same update in well under the bytes.
  const RemoteUpdate typical = testing::StatusUpdate(
      u.id, "node-b", {IntentStatus::kSubmitted, IntentStatus::kDelivered}, 1);
  PeerMessageBuilder typical_map(peer_kind::kUpdate, "node-b", 7);
  WriteRemoteUpdate(typical_map.w(), typical);
  CHECK(CompactFrame(typical).size() * 2 < typical_map.Finish().size());
}

TEST_CASE("AMalformedCompactUpdateIsRefusedNamingWhatIsWrong") {
  const RemoteUpdate u = FullUpdate();
  auto with = [&](size_t at, const std::function<void(MsgWriter&)>& bad) {
    return WithElement(CompactFrame(u), at, bad);
  };
  auto refused = [](const std::string& frame, std::string_view why) {
    auto msg = DecodePeerMessage(frame);
    REQUIRE(msg.ok());
    auto read = ReadRemoteUpdate(*msg->body, msg->from);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().IsInvalidArgument());
    CAPTURE(read.status().message());
    CHECK(read.status().message().find(why) != std::string::npos);
    CHECK_FALSE(VerboseFrame(frame).ok());  // nor rewritten for an older peer
  };
  auto event = [](std::initializer_list<std::function<void(MsgWriter&)>> elements) {
    return [elements](MsgWriter& w) {
      w.BeginArray();
      w.BeginArray();
      for (const auto& e : elements) e(w);
      w.EndArray();
      w.EndArray();
    };
  };
  auto uint = [](uint64_t v) { return [v](MsgWriter& w) { w.Uint(v); }; };
  auto str = [](std::string v) { return [v](MsgWriter& w) { w.String(v); }; };
  auto nil = [](MsgWriter& w) { w.Nil(); };

  SUBCASE("too few elements") {
    PeerMessageBuilder b(peer_kind::kUpdate, "node-b", 7, PeerMessageBuilder::Body::kArray);
    b.w().Bin(u.id.bytes());
    b.w().Uint(4);
    refused(b.Finish(), "fewer than");
  }
  SUBCASE("an id that is text") {
    refused(with(0, [&](MsgWriter& w) { w.String(u.id.ToString()); }), "intent_id");
  }
  SUBCASE("an id of 15 bytes") {
    refused(with(0, [&](MsgWriter& w) { w.Bin(u.id.bytes().substr(1)); }), "intent_id");
  }
  SUBCASE("a status past the last") { refused(with(2, uint(kIntentStatusCount)), "status"); }
  SUBCASE("a delivery attempt past 32 bits") {
    refused(with(3, uint(uint64_t{1} << 32)), "delivery_attempt");
  }
  SUBCASE("an error that is not a map") { refused(with(5, str("boom")), "error"); }
  SUBCASE("a checkpoint not in a bin") { refused(with(9, uint(1)), "checkpoint"); }
  SUBCASE("a result whose bytes are not one value") {
    refused(with(10, [](MsgWriter& w) { w.Bin(std::string("\x92\x01", 2)); }), "result");
  }
  SUBCASE("no events") {
    refused(with(11,
                 [](MsgWriter& w) {
                   w.BeginArray();
                   w.EndArray();
                 }),
            "without an event");
  }
  SUBCASE("an event that is a map") {
    refused(with(11,
                 [](MsgWriter& w) {
                   w.BeginArray();
                   w.BeginMap();
                   w.EndMap();
                   w.EndArray();
                 }),
            "event");
  }
  SUBCASE("an event with a seq past 32 bits") {
    refused(with(11, event({uint(uint64_t{1} << 32), str("intent.x"), uint(1), uint(5),
                            str("system"), nil})),
            "events.seq");
  }
  SUBCASE("an event with an unknown status") {
    refused(with(11, event({uint(1), str("intent.x"), uint(99), uint(5), str("system"), nil})),
            "events.status");
  }
  SUBCASE("an event whose details are not a map") {
    refused(with(11, event({uint(1), str("intent.x"), uint(1), uint(5), str("system"),
                            str("details")})),
            "events.details");
  }
  SUBCASE("an event of five elements") {
    refused(with(11, event({uint(1), str("intent.x"), uint(1), uint(5), str("system")})),
            "fewer than");
  }
  SUBCASE("elements after the last are a newer node's, and passed over") {
    PeerMessageBuilder b(peer_kind::kUpdate, "node-b", 7, PeerMessageBuilder::Body::kArray);
    WriteCompactUpdate(b.w(), u);
    b.w().String("from a newer node");
    auto msg = DecodePeerMessage(b.Finish());
    REQUIRE(msg.ok());
    auto read = ReadRemoteUpdate(*msg->body, msg->from);
    REQUIRE(read.ok());
    CheckSameUpdate(*read, u, "node-b");
  }
}

// A forwarded intent with every field the destination takes set.
IntentRecord FullIntent() {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.report.v1";
  r.from_agent = "agent://acme/a/sender";
  r.to_agent = "agent://acme/b/worker";
  r.correlation_id = "corr-7";
  r.parent_id = NewIntentId(1'700'000'000'001).ToString();
  r.replay_of = NewIntentId(1'700'000'000'002).ToString();
  r.origin_node = "node-a";
  r.target_node = "node-b";
  r.lease_ms = 30'000;
  r.deadline_ms = 1'800'000'000'000;
  r.max_attempts = 4'000'000'000;
  r.retry_initial_ms = 250;
  r.retry_multiplier = 1.5;
  r.retry_max_ms = 60'000;
  r.created_at_ms = 1'700'000'000'123;
  Approval a;
  a.question = "go?";
  a.requested_by = "agent://acme/a/sender";
  a.requested_at_ms = 1'700'000'000'100;
  a.decision = "approved";
  a.decided_by = "human://ops";
  a.decided_at_ms = 1'700'000'000'110;
  r.approval = a;
  return r;
}

void CheckSameIntent(const IntentRecord& read, const IntentRecord& r) {
  CHECK(read.id == r.id);
  CHECK(read.intent_type == r.intent_type);
  CHECK(read.from_agent == r.from_agent);
  CHECK(read.to_agent == r.to_agent);
  CHECK(read.correlation_id == r.correlation_id);
  CHECK(read.parent_id == r.parent_id);
  CHECK(read.replay_of == r.replay_of);
  CHECK(read.origin_node == r.origin_node);
  CHECK(read.target_node == r.target_node);
  CHECK(read.lease_ms == r.lease_ms);
  CHECK(read.deadline_ms == r.deadline_ms);
  CHECK(read.max_attempts == r.max_attempts);
  CHECK(read.retry_initial_ms == r.retry_initial_ms);
  CHECK(read.retry_multiplier == r.retry_multiplier);
  CHECK(read.retry_max_ms == r.retry_max_ms);
  CHECK(read.created_at_ms == r.created_at_ms);
  REQUIRE(read.approval.has_value() == r.approval.has_value());
  if (r.approval) {
    CHECK(read.approval->question == r.approval->question);
    CHECK(read.approval->decision == r.approval->decision);
    CHECK(read.approval->decided_at_ms == r.approval->decided_at_ms);
  }
}

TEST_CASE("ACompactIntentReadsAsTheIntentItWasAndRewritesToAMap") {
  const IntentRecord r = FullIntent();
  const std::string payload =
      "\x82\xa1n\x01\xa4"
      "data\xa3xyz";                                  // {"n": 1, "data": "xyz"}
  const std::string checkpoint = "\x81\xa4step\x02";  // {"step": 2}
  for (bool with_checkpoint : {false, true}) {
    CAPTURE(with_checkpoint);
    const std::string compact =
        CompactIntentFrame(r, payload, with_checkpoint ? checkpoint : std::string());
    // Read as it came, and as rewritten for a node that reads only maps: the same intent.
    auto verbose = VerboseFrame(compact);
    REQUIRE(verbose.ok());
    REQUIRE(verbose->has_value());
    const std::string& rewritten = **verbose;
    for (const std::string* frame : {&compact, &rewritten}) {
      auto msg = DecodePeerMessage(*frame);
      REQUIRE(msg.ok());
      CHECK(msg->kind == peer_kind::kIntent);
      CHECK(msg->seq == 9);
      CHECK(msg->body->type == (frame == &compact ? msgpack::type::ARRAY : msgpack::type::MAP));
      IntentRecord read;
      const msgpack::object *p = nullptr, *c = nullptr;
      REQUIRE(ReadForwardedIntent(*msg->body, &read, &p, &c).ok());
      CheckSameIntent(read, r);
      REQUIRE(p != nullptr);
      CHECK(Pack(*p) == payload);
      if (with_checkpoint) {
        REQUIRE(c != nullptr);
        CHECK(Pack(*c) == checkpoint);
      } else {
        CHECK(c == nullptr);
      }
    }
    // Smaller than the map a node wrote before: the field names stay home.
    PeerMessageBuilder map_form(peer_kind::kIntent, "node-a", 9);
    map_form.w().Key("intent");
    WriteIntent(map_form.w(), r, payload, {}, {});
    if (!with_checkpoint) CHECK(compact.size() + 200 < map_form.Finish().size());
  }
}

TEST_CASE("AMalformedCompactIntentIsRefusedAndStillNamesItsIntent") {
  const IntentRecord r = FullIntent();
  auto with = [&](size_t at, const std::function<void(MsgWriter&)>& bad) {
    return WithElement(CompactIntentFrame(r, "\x80", {}), at, bad);
  };
  // Refused naming `why`; the id read first, so that the origin can be answered.
  auto refused = [&](const std::string& frame, std::string_view why, bool names_id = true) {
    auto msg = DecodePeerMessage(frame);
    REQUIRE(msg.ok());
    IntentRecord read;
    const msgpack::object *p = nullptr, *c = nullptr;
    Status s = ReadForwardedIntent(*msg->body, &read, &p, &c);
    REQUIRE_FALSE(s.ok());
    CAPTURE(s.message());
    CHECK(s.message().find(why) != std::string::npos);
    CHECK((read.id == r.id) == names_id);
    CHECK_FALSE(VerboseFrame(frame).ok());
  };
  SUBCASE("too few elements") {
    PeerMessageBuilder b(peer_kind::kIntent, "node-a", 9, PeerMessageBuilder::Body::kArray);
    b.w().Bin(r.id.bytes());
    refused(b.Finish(), "fewer than", false);
  }
  SUBCASE("an id that is text") {
    refused(with(0, [&](MsgWriter& w) { w.String(r.id.ToString()); }), "intent_id", false);
  }
  SUBCASE("an intent type that is a number") {
    refused(with(1, [](MsgWriter& w) { w.Uint(7); }), "intent_type");
  }
  SUBCASE("max_attempts past 32 bits") {
    refused(with(11, [](MsgWriter& w) { w.Uint(uint64_t{1} << 32); }), "max_attempts");
  }
  SUBCASE("a retry multiplier that is text") {
    refused(with(13, [](MsgWriter& w) { w.String("2"); }), "retry_multiplier");
  }
  SUBCASE("an approval that is a list") {
    refused(with(16,
                 [](MsgWriter& w) {
                   w.BeginArray();
                   w.EndArray();
                 }),
            "approval");
  }
}

TEST_CASE("TheIntentAMessageIsAboutIsFoundInEitherForm") {
  const RemoteUpdate u = FullUpdate();
  const IntentRecord r = FullIntent();
  PeerMessageBuilder map_update(peer_kind::kUpdate, "node-b", 7);
  WriteRemoteUpdate(map_update.w(), u);
  PeerMessageBuilder map_intent(peer_kind::kIntent, "node-a", 9);
  map_intent.w().Key("intent");
  WriteIntent(map_intent.w(), r, "\x80", {}, {});
  PeerMessageBuilder control(peer_kind::kControl, "node-a", 3);
  control.w().Field("intent_id", u.id.ToText().view());
  control.w().Field("action", "cancel");
  const std::vector<std::pair<std::string, IntentId>> cases = {
      {CompactFrame(u), u.id},
      {map_update.Finish(), u.id},
      {CompactIntentFrame(r, "\x80", {}), r.id},
      {map_intent.Finish(), r.id},
      {control.Finish(), u.id}};
  for (const auto& [frame, id] : cases) {
    auto msg = DecodePeerMessage(frame);
    REQUIRE(msg.ok());
    CAPTURE(msg->kind);
    CHECK(IntentOf(*msg) == id);
  }
  // One whose id cannot be read names none.
  auto bad = DecodePeerMessage(WithElement(CompactFrame(u), 0, [](MsgWriter& w) { w.Uint(1); }));
  REQUIRE(bad.ok());
  CHECK_FALSE(IntentOf(*bad).has_value());
}

}  // namespace
}  // namespace handoff::wire
