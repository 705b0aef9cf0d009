// base/: ids, units, names, timestamps, msgpack helpers, records.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "base/intent_id.h"
#include "base/logging.h"
#include "base/msgpack_io.h"
#include "base/names.h"
#include "base/records.h"
#include "base/time_format.h"
#include "base/units.h"

namespace handoff {
namespace {

TEST_CASE("TextFromOutsideCannotForgeALogLine") {
  char path[] = "/tmp/handoff-log-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(::dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  REQUIRE(InitLogging("info").ok());
  spdlog::error("refused a message from '{}'", "x\n2026-01-01T00:00:00.000 error FORGED\x1b[2J");
  spdlog::default_logger()->flush();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  const std::string log = text.str();
  CAPTURE(log);
  CHECK(std::count(log.begin(), log.end(), '\n') == 1);  // one line, however many it was sent
  CHECK(log.find("x\\x0a2026-01-01T00:00:00.000 error FORGED\\x1b[2J") != std::string::npos);
  CHECK(InitLogging("warn").ok());  // again: replaces the logger
}

TEST_CASE("IntentIdsAreTimeOrderedUuidV7s") {
  IntentId a = NewIntentId(1'700'000'000'000);
  IntentId b = NewIntentId(1'700'000'000'000);  // same millisecond
  IntentId c = NewIntentId(1'700'000'000'001);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(a.UnixMs() == 1'700'000'000'000);
  std::string text = a.ToString();
  CHECK(text.size() == 36);
  CHECK(text[14] == '7');                                          // version
  CHECK(std::string("89ab").find(text[19]) != std::string::npos);  // variant
  auto parsed = IntentId::Parse(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == a);
  auto upper = IntentId::Parse("0190F1C2-7B3A-7C4D-8E5F-0123456789AB");
  REQUIRE(upper.ok());
  CHECK(upper->ToString() == "0190f1c2-7b3a-7c4d-8e5f-0123456789ab");
  std::set<std::string> many;
  for (int i = 0; i < 10000; ++i) many.insert(NewIntentId(1'700'000'000'000).ToString());
  CHECK(many.size() == 10000);
}

TEST_CASE("MalformedIntentIdsAreRefused") {
  for (const char* bad :
       {"", "nope", "0190f1c2-7b3a-7c4d-8e5f-0123456789a", "0190f1c2-7b3a-7c4d-8e5f-0123456789abc",
        "0190f1c27b3a7c4d8e5f0123456789ab", "0190f1c2-7b3a-7c4d-8e5f-01234567890g",
        "0190f1c2_7b3a-7c4d-8e5f-0123456789ab"}) {
    CAPTURE(bad);
    CHECK(IntentId::Parse(bad).status().IsInvalidArgument());
  }
  // Any one character out of place: a digit that is not hex (or not ASCII), a dash moved.
  const std::string good = "0190f1c2-7b3a-7c4d-8e5f-0123456789ab";
  REQUIRE(IntentId::Parse(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {'x', '\xff', '-', ' '}) {
      if (c == good[i]) continue;
      std::string bad = good;
      bad[i] = c;
      CAPTURE(bad);
      CHECK(IntentId::Parse(bad).status().IsInvalidArgument());
    }
  }
  CHECK(IntentId::FromBytes("short").status().IsCorruption());
}

TEST_CASE("DurationsParseWithUnits") {
  CHECK(*ParseDurationMs("250ms") == 250);
  CHECK(*ParseDurationMs("2s") == 2000);
  CHECK(*ParseDurationMs("5m") == 300'000);
  CHECK(*ParseDurationMs("1h") == 3'600'000);
  CHECK(*ParseDurationMs("1d") == 86'400'000);
  CHECK(*ParseDurationMs("1.5s") == 1500);
  CHECK(*ParseDurationMs("3") == 3000);
  for (const char* bad : {"", "s", "fast", "5 parsecs", "-1s", "1e400s"}) {
    CAPTURE(bad);
    CHECK(ParseDurationMs(bad).status().IsInvalidArgument());
  }
  CHECK(FormatDurationMs(1500) == "1500ms");
  CHECK(FormatDurationMs(2000) == "2s");
  CHECK(FormatDurationMs(300'000) == "5m");
  CHECK(FormatDurationMs(3'600'000) == "1h");
}

TEST_CASE("SizesParseWithBinaryUnits") {
  CHECK(*ParseByteSize("4096") == 4096);
  CHECK(*ParseByteSize("64KiB") == 65536);
  CHECK(*ParseByteSize("1MiB") == 1048576);
  CHECK(*ParseByteSize("1gib") == (uint64_t{1} << 30));
  CHECK(ParseByteSize("lots").status().IsInvalidArgument());
  CHECK(ParseByteSize("3 furlongs").status().IsInvalidArgument());
  // Past what 64 bits hold: refused, never converted (float-cast-overflow under sanitize).
  CHECK(ParseByteSize("99999999999999999999TiB").status().message().find("too large") !=
        std::string::npos);
  CHECK(ParseByteSize("16777216TiB").status().IsInvalidArgument());  // 2^64
  CHECK(ParseDurationMs("99999999999999999999d").status().IsInvalidArgument());
  CHECK(FormatByteSize(1 << 20) == "1MiB");
}

TEST_CASE("AgentAddressesMustHaveThreeLowercaseSegments") {
  for (const char* good :
       {"agent://acme/prod/worker", "agent://a/b/c", "agent://my-org/env_1/x.y"}) {
    CAPTURE(good);
    CHECK(ValidateAgentAddress(good).ok());
  }
  for (const char* bad :
       {"", "agent://", "agent://acme/prod", "agent://acme/prod/worker/extra",
        "agent://Acme/prod/worker", "agent://acme//worker", "agent://acme/prod/",
        "http://acme/prod/worker", "agent://acme/prod/wor ker", "agent://acme/prod/w\xc3\xa9"}) {
    CAPTURE(bad);
    Status s = ValidateAgentAddress(bad);
    CHECK(s.IsInvalidArgument());
    CHECK(s.message().find("agent://<org>/<env>/<name>") != std::string::npos);
  }
  CHECK(ValidateAgentAddress("agent://a/b/" + std::string(300, 'x')).IsInvalidArgument());
}

TEST_CASE("IntentTypesAreIntentNameVersion") {
  for (const char* good : {"intent.handoff.process.v1", "intent.x.v12", "intent.a-b_c.v3"}) {
    CAPTURE(good);
    CHECK(ValidateIntentType(good).ok());
  }
  for (const char* bad : {"", "intent.v1", "intent..v1", "handoff.process.v1", "intent.x.v",
                          "intent.x.v0", "intent.x.v01", "intent.X.v1", "intent.x.1"}) {
    CAPTURE(bad);
    CHECK(ValidateIntentType(bad).IsInvalidArgument());
  }
  CHECK(ValidateNodeName("node-a").ok());
  CHECK(ValidateNodeName("Node A").IsInvalidArgument());
  CHECK(ValidateNodeName("").IsInvalidArgument());
}

TEST_CASE("TimestampsAreRfc3339Utc") {
  CHECK(FormatRfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(FormatRfc3339(1'764'000'000'123) == "2025-11-24T16:00:00.123Z");
  CHECK(*ParseRfc3339("2025-11-24T16:00:00.123Z") == 1'764'000'000'123);
  CHECK(*ParseRfc3339("2025-11-24T17:00:00+01:00") == 1'764'000'000'000);
  CHECK(ParseRfc3339("yesterday").status().IsInvalidArgument());
  CHECK(ParseRfc3339("2025-13-01T00:00:00Z").status().IsInvalidArgument());
}

TEST_CASE("MsgWriterPatchesContainerSizesAndRoundTrips") {
  MsgWriter w;
  w.BeginMap();
  w.Field("s", "text");
  w.Field("i", int64_t{-5});
  w.Field("u", uint64_t{7});
  w.Field("b", true);
  w.Key("list");
  w.BeginArray();
  w.Int(1);
  w.BeginMap();
  w.Field("deep", "yes");
  w.EndMap();
  w.Nil();
  w.EndArray();
  w.FieldRaw("raw", std::string(1, static_cast<char>(0x2a)));  // fixint 42
  w.EndMap();
  auto handle = Unpack(w.view());
  REQUIRE(handle.ok());
  auto m = MapReader::From(handle->get(), "test");
  REQUIRE(m.ok());
  std::string s;
  CHECK(m->String("s", &s).ok());
  CHECK(s == "text");
  int64_t i = 0;
  CHECK(m->OptInt("i", &i).ok());
  CHECK(i == -5);
  uint64_t u = 0;
  CHECK(m->Uint("u", &u).ok());
  CHECK(u == 7);
  bool b = false;
  CHECK(m->OptBool("b", &b).ok());
  CHECK(b);
  const msgpack::object* list = m->Find("list");
  REQUIRE(list != nullptr);
  REQUIRE(list->type == msgpack::type::ARRAY);
  CHECK(list->via.array.size == 3);
  CHECK(m->Find("raw")->via.u64 == 42);
}

TEST_CASE("MsgWriterEncodesStringsOfEveryLengthClassExactly") {
  // Short strings take a one-byte header, longer ones str8 and str16: as keys and as values,
  // the bytes are msgpack's own.
  for (size_t n : {size_t{0}, size_t{1}, size_t{30}, size_t{31}, size_t{32}, size_t{255},
                   size_t{256}, size_t{70000}}) {
    CAPTURE(n);
    const std::string text(n, 'k');
    MsgWriter w;
    w.BeginMap();
    w.Field(text, text);
    w.EndMap();
    msgpack::sbuffer expected;
    msgpack::packer<msgpack::sbuffer> packer(expected);
    packer.pack_map(1);  // MsgWriter writes map32 headers, patched when the map closes
    packer.pack(text);
    packer.pack(text);
    const std::string_view got = w.view();
    REQUIRE(got.size() == expected.size() + 4);
    CHECK(static_cast<uint8_t>(got[0]) == 0xdf);
    CHECK(got.substr(5) == std::string_view(expected.data() + 1, expected.size() - 1));
    auto handle = Unpack(got);
    REQUIRE(handle.ok());
    std::string value;
    CHECK(MapReader::From(handle->get(), "test")->String(text, &value).ok());
    CHECK(value == text);
  }
  // Past the writer's first 256 bytes: it grows and keeps what it wrote.
  MsgWriter w;
  w.BeginArray();
  for (int i = 0; i < 100; ++i) w.String(std::string(static_cast<size_t>(i % 40), 'a' + i % 26));
  w.EndArray();
  auto handle = Unpack(w.view());
  REQUIRE(handle.ok());
  REQUIRE(handle->get().via.array.size == 100);
  for (uint32_t i = 0; i < 100; ++i) {
    CHECK(handle->get().via.array.ptr[i].as<std::string>() ==
          std::string(i % 40, static_cast<char>('a' + i % 26)));
  }
}

TEST_CASE("MapReaderNamesTheFieldOnAWrongType") {
  MsgWriter w;
  w.BeginMap();
  w.Field("to_agent", int64_t{3});
  w.EndMap();
  auto handle = Unpack(w.view());
  REQUIRE(handle.ok());
  auto m = MapReader::From(handle->get(), "request");
  std::string s;
  Status st = m->String("to_agent", &s);
  CHECK(st.IsInvalidArgument());
  CHECK(st.message() == "field 'to_agent' must be a string, not an integer");
  CHECK(m->String("missing", &s).message() == "missing field 'missing'");
  uint64_t u;
  CHECK(m->OptUint("to_agent", &u).ok());
  int64_t i;
  CHECK(m->OptInt("to_agent", &i).ok());
  bool b;
  CHECK(m->OptBool("to_agent", &b).IsInvalidArgument());
}

TEST_CASE("DecodingABatchTakesMemoryInProportionToIt") {
  // A thousand small requests in one frame, each decoded into a zone of its own: the zones
  // together stay within a few times the frame's bytes (each zone was once sized by the rest
  // of the frame: 55 MB for this frame of 89 KB).
  MsgWriter w;
  w.BeginArray();
  for (int i = 0; i < 1024; ++i) {
    w.BeginMap();
    w.Field("op", "send");
    w.Field("payload", std::string(64, 'x'));
    w.EndMap();
  }
  w.EndArray();
  const std::string batch = w.str();
  // glibc's count of bytes in use (under a sanitizer, which has an allocator of its own, it
  // does not move and the bound holds trivially).
  const auto before = static_cast<int64_t>(mallinfo2().uordblks);
  auto items = UnpackBatch(batch, 1024);
  const auto after = static_cast<int64_t>(mallinfo2().uordblks);
  REQUIRE(items.ok());
  REQUIRE(items->size() == 1024);
  CHECK((*items)[1023].handle.get().via.map.size == 2);
  CAPTURE(batch.size());
  CHECK(after - before < 32 * static_cast<int64_t>(batch.size()));
  // A batch of one large value and small ones still decodes each whole (its zone grows).
  MsgWriter mixed;
  mixed.BeginArray();
  mixed.String(std::string(200'000, 'y'));
  for (int i = 0; i < 99; ++i) mixed.Uint(static_cast<uint64_t>(i));
  mixed.EndArray();
  auto decoded = UnpackBatch(mixed.view(), 1024);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 100);
  CHECK((*decoded)[0].handle.get().as<std::string>() == std::string(200'000, 'y'));
  CHECK((*decoded)[99].handle.get().as<uint64_t>() == 98);
}

TEST_CASE("UnpackRejectsMalformedInputWithoutThrowing") {
  CHECK(Unpack("").status().IsInvalidArgument());
  CHECK(Unpack("\x92\x01").status().IsInvalidArgument());  // array of 2 with 1 element
  CHECK(Unpack(std::string("\x01\x02", 2)).status().IsInvalidArgument());  // trailing
  CHECK(Unpack("\xc1").status().IsInvalidArgument());                      // never-used byte
  std::string deep(100, static_cast<char>(0x91));
  deep.push_back(static_cast<char>(0xc0));
  CHECK(Unpack(deep).status().message().find("deep") != std::string::npos);
  std::string huge_str = "\xdb\xff\xff\xff\xff";  // str32 claiming 4 GiB
  CHECK(Unpack(huge_str).status().IsInvalidArgument());
  UnpackLimits tight;
  tight.max_container = 2;
  CHECK(Unpack("\x93\x01\x02\x03", tight).status().IsInvalidArgument());
}

TEST_CASE("Utf8IsCheckedStrictly") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ascii"));
  CHECK(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  CHECK_FALSE(IsValidUtf8("\xff"));
  CHECK_FALSE(IsValidUtf8("\x80"));              // a continuation byte first
  CHECK_FALSE(IsValidUtf8("\xc3"));              // cut short
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong, three bytes
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  // Text is checked eight ASCII bytes at a time: a bad byte, a good sequence and one cut short
  // at every offset around those words, in strings of every length around them.
  for (size_t length = 1; length <= 40; ++length) {
    for (size_t at = 0; at < length; ++at) {
      CAPTURE(length);
      CAPTURE(at);
      std::string text(length, 'a');
      text[at] = '\xff';
      CHECK_FALSE(IsValidUtf8(text));
      text[at] = '\x80';
      CHECK_FALSE(IsValidUtf8(text));
      if (at + 1 < length) {
        text[at] = '\xc3';
        text[at + 1] = '\xa9';
        CHECK(IsValidUtf8(text));
        text[at + 1] = 'a';
        CHECK_FALSE(IsValidUtf8(text));  // a lead byte followed by ASCII
      } else {
        text[at] = '\xc3';
        CHECK_FALSE(IsValidUtf8(text));  // cut short at the end
      }
    }
    CHECK(IsValidUtf8(std::string(length, 'a')));
  }
  CHECK_FALSE(IsValidUtf8("ok\xe2\x82"));  // cut short at the end
}

TEST_CASE("OnlyValuesShowableAsJsonPassAndTheRefusalSaysWhere") {
  auto check = [](const std::string& packed) {
    auto decoded = Unpack(packed);
    REQUIRE(decoded.ok());
    return CheckJsonValue("payload", decoded->get());
  };
  MsgWriter fine;
  fine.BeginMap();
  fine.Field("s", "text");
  fine.Field("n", int64_t{-3});
  fine.Field("f", 1.5);
  fine.Key("list");
  fine.BeginArray();
  fine.Nil();
  fine.Bool(true);
  fine.EndArray();
  fine.Field("", "an empty key is a key");
  fine.EndMap();
  CHECK(check(fine.str()).ok());

  struct Case {
    std::string packed;
    const char* message;
  };
  const std::vector<Case> cases = {
      {std::string("\x81\x01\xa1x", 4), "payload: a map key is an integer; JSON object keys"},
      {std::string("\x81\xa1k\xc4\x01\x00", 6), "payload.k: binary values"},
      {std::string("\x81\xa1k\xd4\x01\x00", 6), "payload.k: msgpack extension values"},
      {std::string("\x81\xa1k\xa1\xff", 5), "payload.k: a string that is not valid UTF-8"},
      {std::string("\x81\xa1\xff\xa1x", 5), "payload: a map key is not valid UTF-8"},
      {std::string("\x81\xa1k\x92\x01\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", 14),
       "payload.k[1]: NaN and infinite numbers"},
      {std::string("\x81\xa3"
                   "a b\x81\xa1"
                   "c\xca\x7f\xc0\x00\x00",
                   13),
       "payload[\"a b\"].c: NaN"},
  };
  for (const Case& c : cases) {
    Status s = check(c.packed);
    CAPTURE(s.ToString());
    CHECK(s.IsInvalidArgument());
    CHECK(s.message().rfind(c.message, 0) == 0);
  }
}

TEST_CASE("RecordsRoundTrip") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.correlation_id = "corr";
  r.origin_node = "node-a";
  r.lease_ms = 1234;
  r.status = IntentStatus::kFailed;
  r.delivery_attempt = 3;
  r.has_checkpoint = true;
  r.error = ErrorInfo{"exit_status", "bad", true};
  r.created_at_ms = 1;
  r.updated_at_ms = 2;
  r.seq = 9;
  auto back = DecodeIntent(EncodeIntent(r));
  REQUIRE(back.ok());
  CHECK(back->id == r.id);
  CHECK(back->intent_type == r.intent_type);
  CHECK(back->correlation_id == "corr");
  CHECK(back->parent_id.empty());
  CHECK(back->lease_ms == 1234);
  CHECK(back->status == IntentStatus::kFailed);
  CHECK(back->delivery_attempt == 3);
  CHECK(back->has_checkpoint);
  CHECK(back->error == r.error);
  CHECK(back->seq == 9);

  EventRecord e;
  e.id = r.id;
  e.seq = 4;
  e.event_type = "intent.delivered";
  e.status = IntentStatus::kDelivered;
  e.at_ms = 77;
  e.node = "node-a";
  e.actor = "system";
  e.details = std::string("\x81\xa1\x61\x01", 4);  // {"a":1}
  auto eb = DecodeEvent(EncodeEvent(e));
  REQUIRE(eb.ok());
  CHECK(eb->seq == 4);
  CHECK(eb->event_type == "intent.delivered");
  CHECK(eb->status == IntentStatus::kDelivered);
  CHECK(eb->details == e.details);

  // Stored bytes that do not decode are corruption, whatever is wrong with them.
  CHECK(DecodeIntent("\x81\xa1\x61\x01").status().IsCorruption());  // no intent_id
  CHECK(DecodeIntent("garbage").status().IsCorruption());
  CHECK(DecodeEvent("\x90").status().IsCorruption());
}

// Every field of both records survives the stored form, including the optional parts.
TEST_CASE("StoredRecordsKeepEveryField") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.correlation_id = "corr";
  r.parent_id = "parent";
  r.origin_node = "node-a";
  r.target_node = "node-b";
  r.lease_ms = -5;
  r.status = IntentStatus::kTimedOut;
  r.waiting_reason = "approval";
  r.delivery_attempt = 7;
  r.has_checkpoint = true;
  r.error = ErrorInfo{"deadline_exceeded", "too late", false};
  r.created_at_ms = 1;
  r.updated_at_ms = 2;
  r.seq = 12;
  r.deadline_ms = 99;
  r.max_attempts = 4;
  r.retry_initial_ms = 250;
  r.retry_multiplier = 1.5;
  r.retry_max_ms = 9000;
  r.last_error = ErrorInfo{"exit_status", "crashed", true};
  r.idempotency_key = "key-1";
  r.reply_to = "agent://a/b/r";
  r.replay_of = "0190c0de-0000-7000-8000-000000000000";
  r.approval =
      Approval{"ship it?", {"yes", "no"}, "agent://a/b/c", 5, true, "yes", "fine", "operator", 6};
  r.remote_seq = uint64_t{1} << 40;
  const std::string stored = EncodeIntent(r);
  auto back = DecodeIntent(stored);
  REQUIRE(back.ok());
  CHECK(back->id == r.id);
  CHECK(back->intent_type == r.intent_type);
  CHECK(back->from_agent == r.from_agent);
  CHECK(back->to_agent == r.to_agent);
  CHECK(back->correlation_id == r.correlation_id);
  CHECK(back->parent_id == r.parent_id);
  CHECK(back->origin_node == r.origin_node);
  CHECK(back->target_node == r.target_node);
  CHECK(back->lease_ms == r.lease_ms);
  CHECK(back->status == r.status);
  CHECK(back->waiting_reason == r.waiting_reason);
  CHECK(back->delivery_attempt == r.delivery_attempt);
  CHECK(back->has_checkpoint);
  CHECK(back->error == r.error);
  CHECK(back->created_at_ms == 1);
  CHECK(back->updated_at_ms == 2);
  CHECK(back->seq == 12);
  CHECK(back->deadline_ms == 99);
  CHECK(back->max_attempts == 4);
  CHECK(back->retry_initial_ms == 250);
  CHECK(back->retry_multiplier == 1.5);
  CHECK(back->retry_max_ms == 9000);
  CHECK(back->last_error == r.last_error);
  CHECK(back->idempotency_key == r.idempotency_key);
  CHECK(back->reply_to == r.reply_to);
  CHECK(back->replay_of == r.replay_of);
  REQUIRE(back->approval.has_value());
  CHECK(back->approval->question == "ship it?");
  CHECK(back->approval->outcomes == std::vector<std::string>{"yes", "no"});
  CHECK(back->approval->requested_by == "agent://a/b/c");
  CHECK(back->approval->requested_at_ms == 5);
  CHECK(back->approval->mid_work);
  CHECK(back->approval->decision == "yes");
  CHECK(back->approval->comment == "fine");
  CHECK(back->approval->decided_by == "operator");
  CHECK(back->approval->decided_at_ms == 6);
  CHECK(back->remote_seq == r.remote_seq);

  // Every cut of the stored bytes, and a byte too many, is corruption, never a crash.
  for (size_t n = 0; n < stored.size(); ++n) {
    CHECK(DecodeIntent(stored.substr(0, n)).status().IsCorruption());
  }
  CHECK(DecodeIntent(stored + "x").status().IsCorruption());
  std::string bad_status = stored;
  bad_status[1 + IntentId::kSize + 7 * 4 + r.intent_type.size() + r.from_agent.size() +
             r.to_agent.size() + r.correlation_id.size() + r.parent_id.size() +
             r.origin_node.size() + r.target_node.size() + 8] = 42;
  CHECK(DecodeIntent(bad_status).status().IsCorruption());

  EventRecord e;
  e.id = r.id;
  e.seq = 4;
  e.event_type = "intent.completed";
  e.status = IntentStatus::kCompleted;
  e.at_ms = 77;
  e.node = "node-a";
  e.actor = "agent://a/b/d";
  e.details = std::string("\x81\xa1\x61\x01", 4);
  e.audit_seq = 31;
  const std::string stored_event = EncodeEvent(e);
  auto eb = DecodeEvent(stored_event);
  REQUIRE(eb.ok());
  CHECK(eb->id == e.id);
  CHECK(eb->seq == 4);
  CHECK(eb->event_type == e.event_type);
  CHECK(eb->status == e.status);
  CHECK(eb->at_ms == 77);
  CHECK(eb->node == e.node);
  CHECK(eb->actor == e.actor);
  CHECK(eb->details == e.details);
  CHECK(eb->audit_seq == 31);
  CHECK(StoredEventAuditSeq(stored_event).value() == 31);
  for (size_t n = 0; n < stored_event.size(); ++n) {
    CHECK(DecodeEvent(stored_event.substr(0, n)).status().IsCorruption());
  }
}

// Data directories written before the binary stored form hold msgpack maps: still read.
TEST_CASE("RecordsStoredAsMsgpackMapsAreStillRead") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.origin_node = "node-a";
  r.status = IntentStatus::kWaiting;
  r.waiting_reason = "approval";
  r.seq = 3;
  r.approval = Approval{"ok?", {}, "agent://a/b/c", 5, false, "", "", "", 0};
  MsgWriter w;
  w.BeginMap();
  WriteIntentFields(w, r);
  w.EndMap();
  auto back = DecodeIntent(w.Release());
  REQUIRE(back.ok());
  CHECK(back->id == r.id);
  CHECK(back->status == IntentStatus::kWaiting);
  CHECK(back->waiting_reason == "approval");
  CHECK(back->seq == 3);
  REQUIRE(back->approval.has_value());
  CHECK(back->approval->question == "ok?");

  EventRecord e;
  e.id = r.id;
  e.seq = 2;
  e.event_type = "intent.submitted";
  e.status = IntentStatus::kSubmitted;
  e.node = "node-a";
  e.actor = "agent://a/b/c";
  MsgWriter ew;
  ew.BeginMap();
  WriteEventFields(ew, e);
  ew.Field("audit_seq", uint64_t{8});
  ew.EndMap();
  const std::string old_event = ew.Release();
  CHECK(StoredEventAuditSeq(old_event).value() == 8);
  auto eb = DecodeEvent(old_event);
  REQUIRE(eb.ok());
  CHECK(eb->seq == 2);
  CHECK(eb->event_type == "intent.submitted");
  CHECK(eb->audit_seq == 8);
}

TEST_CASE("StatusNamesAndCodesRoundTrip") {
  for (int i = 0; i < kIntentStatusCount; ++i) {
    auto s = static_cast<IntentStatus>(i);
    CHECK(ParseIntentStatus(IntentStatusName(s)) == s);
  }
  CHECK(ParseIntentStatus("in_progress") == IntentStatus::kInProgress);
  CHECK_FALSE(ParseIntentStatus("DONE").has_value());
  for (int i = 0; i <= static_cast<int>(Code::kNotStored); ++i) {
    CHECK(CodeFromName(CodeName(static_cast<Code>(i))) == static_cast<Code>(i));
  }
  CHECK(CodeName(Code::kNotStored) == "not_stored");
  CHECK(Status::NotFound("x").ToString() == "not_found: x");
}

}  // namespace
}  // namespace handoff
