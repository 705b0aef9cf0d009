// wire/: the agent protocol envelope and records.

#include "wire/agent_protocol.h"

#include <doctest/doctest.h>

namespace handoff::wire {
namespace {

TEST_CASE("RequestsRoundTripThroughTheEnvelope") {
  RequestBuilder b("send", 42);
  b.w().Field("to_agent", "agent://a/b/c");
  uint64_t rid = 0;
  auto req = DecodeRequest(b.Finish(), &rid);
  REQUIRE(req.ok());
  CHECK(rid == 42);
  CHECK(req->op == "send");
  CHECK(req->rid == 42);
  std::string to;
  CHECK(req->body().String("to_agent", &to).ok());
  CHECK(to == "agent://a/b/c");
}

TEST_CASE("ABrokenRequestStillReportsItsRid") {
  MsgWriter w;
  w.BeginMap();
  w.Field("rid", uint64_t{9});
  w.Field("v", uint64_t{1});
  w.Field("op", int64_t{5});  // wrong type
  w.EndMap();
  uint64_t rid = 0;
  auto req = DecodeRequest(w.view(), &rid);
  CHECK(req.status().IsInvalidArgument());
  CHECK(rid == 9);
  CHECK(req.status().message().find("'op'") != std::string::npos);

  rid = 1;
  CHECK(DecodeRequest("\xc1", &rid).status().IsInvalidArgument());
  CHECK(rid == 0);
}

TEST_CASE("RepliesCarryResultsOrErrorCodes") {
  ReplyBuilder ok(7);
  ok.w().Field("intent_id", "x");
  auto reply = DecodeReply(ok.Finish());
  REQUIRE(reply.ok());
  CHECK(reply->rid == 7);
  CHECK(reply->status.ok());
  CHECK(reply->push.empty());

  auto error = DecodeReply(EncodeErrorReply(8, Status::Conflict("lease lost")));
  REQUIRE(error.ok());
  CHECK(error->rid == 8);
  CHECK(error->status.IsConflict());
  CHECK(error->status.message() == "lease lost");

  MsgWriter push;
  push.BeginMap();
  push.Field("v", kMessageVersion);
  push.Field("push", kPushDeliver);
  push.EndMap();
  auto pushed = DecodeReply(push.view());
  REQUIRE(pushed.ok());
  CHECK(pushed->push == "deliver");
}

TEST_CASE("AnUnknownErrorCodeIsKeptInTheMessage") {
  MsgWriter w;
  w.BeginMap();
  w.Field("code", "quota_exceeded");
  w.Field("message", "too many");
  w.EndMap();
  auto handle = Unpack(w.view());
  REQUIRE(handle.ok());
  Status s = ReadError(*MapReader::From(handle->get(), "error"));
  CHECK(s.IsIOError());
  CHECK(s.message() == "quota_exceeded: too many");
}

TEST_CASE("AnIntentCarriesItsBlobsAsNestedValues") {
  IntentRecord r;
  r.id = NewIntentId(5);
  r.status = IntentStatus::kDelivered;
  r.delivery_attempt = 2;
  const std::string payload("\x81\xa1\x6e\x03", 4);  // {"n":3}
  MsgWriter w;
  WriteIntent(w, r, payload, {}, {});
  auto handle = Unpack(w.view());
  REQUIRE(handle.ok());
  auto m = MapReader::From(handle->get(), "intent");
  REQUIRE(m.ok());
  IntentRecord back;
  REQUIRE(ReadIntentFields(*m, &back).ok());
  CHECK(back.id == r.id);
  CHECK(back.delivery_attempt == 2);
  REQUIRE(m->Find("payload") != nullptr);
  CHECK(Pack(*m->Find("payload")) == payload);
  CHECK(m->Find("checkpoint") == nullptr);  // nil counts as absent
}

}  // namespace
TEST_CASE("TheRidOfARequestTooDeepToDecodeIsStillRead") {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep.push_back(static_cast<char>(0x91));  // [[[...]]]
  deep.push_back(static_cast<char>(0xc0));
  auto frame = [&](bool rid_first) {
    MsgWriter w;
    w.BeginMap();
    w.Field("v", uint64_t{1});
    if (rid_first) w.Field("rid", uint64_t{41});
    w.Key("payload");
    w.BeginMap();
    w.Field("rid", uint64_t{99});  // not the top level's
    w.EndMap();
    w.FieldRaw("deep", deep);
    if (!rid_first) w.Field("rid", uint64_t{42});
    w.EndMap();
    return w.Release();
  };
  uint64_t rid = 0;
  CHECK(DecodeRequest(frame(true), &rid).status().message().find("deep") != std::string::npos);
  CHECK(rid == 41);
  CHECK_FALSE(DecodeRequest(frame(false), &rid).ok());
  CHECK(rid == 42);  // past 100,000 levels, without recursion
  CHECK_FALSE(DecodeRequest(frame(true).substr(0, 20), &rid).ok());
  CHECK(rid == 41);  // cut short after the rid
  CHECK_FALSE(DecodeRequest("\x91\x01", &rid).ok());
  CHECK(rid == 0);  // not a map: no rid
  CHECK(PeekTopLevelUint(frame(true), "v") == std::optional<uint64_t>(1));
  CHECK_FALSE(PeekTopLevelUint(frame(true), "absent").has_value());
}

}  // namespace handoff::wire
