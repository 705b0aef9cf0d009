// client/: JSON <-> msgpack and record decoding.

#include "client/convert.h"

#include <doctest/doctest.h>

#include "base/records.h"
#include "wire/agent_protocol.h"

namespace handoff {
namespace {

TEST_CASE("JsonValuesSurviveTheTripThroughMsgpack") {
  Json value = {{"s", "text"},
                {"i", -3},
                {"u", 12345678901234},
                {"f", 1.5},
                {"b", true},
                {"n", nullptr},
                {"list", {1, "two", {{"three", 3}}}}};
  std::string packed = JsonToMsgpack(value);
  auto handle = Unpack(packed);
  REQUIRE(handle.ok());
  auto back = MsgpackToJson(handle->get());
  REQUIRE(back.ok());
  CHECK(*back == value);
}

TEST_CASE("AnIntentMapDecodesIntoTheClientRecord") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.x.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.status = IntentStatus::kCompleted;
  r.delivery_attempt = 1;
  r.created_at_ms = 10;
  r.seq = 6;
  MsgWriter w;
  wire::WriteIntent(w, r, JsonToMsgpack({{"p", 1}}), JsonToMsgpack({{"step", 2}}),
                    JsonToMsgpack("done"));
  auto handle = Unpack(w.view());
  REQUIRE(handle.ok());
  auto intent = ReadIntent(handle->get());
  REQUIRE(intent.ok());
  CHECK(intent->intent_id == r.id.ToString());
  CHECK(intent->status == IntentStatus::kCompleted);
  CHECK(intent->payload == Json{{"p", 1}});
  CHECK(intent->checkpoint == Json{{"step", 2}});
  CHECK(intent->result == "done");
  CHECK(intent->seq == 6);
  CHECK_FALSE(intent->error.has_value());
}

}  // namespace
}  // namespace handoff
