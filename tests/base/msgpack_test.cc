// base/msgpack_io.h: writing, reading within limits, batches, and what may be shown as JSON.

#include <doctest/doctest.h>
#include <malloc.h>

#include <cstdint>
#include <string>

#include "base/msgpack_io.h"

namespace handoff {
namespace {

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

TEST_CASE("DecodedValuesOutliveTheirFrameAndShareOneCopyOfIt") {
  MsgWriter w;
  w.BeginArray();
  for (int i = 0; i < 3; ++i) {
    w.BeginMap();
    w.Field("op", "send");
    w.Field("payload", std::string(100, static_cast<char>('a' + i)));
    w.EndMap();
  }
  w.EndArray();
  std::string frame = w.str();
  auto items = UnpackBatch(frame, 16);
  REQUIRE(items.ok());
  std::vector<Decoded> kept;
  for (UnpackedItem& item : *items) kept.push_back(std::move(item.handle));
  auto single = Unpack((*items)[0].bytes);  // a view into the frame
  REQUIRE(single.ok());
  items->clear();
  // The frame is overwritten and freed: the values point into a copy of it, not into it.
  std::fill(frame.begin(), frame.end(), '\xc1');
  frame = std::string();
  for (int i = 0; i < 3; ++i) {
    auto m = MapReader::From(kept[i].get(), "test");
    REQUIRE(m.ok());
    std::string payload;
    REQUIRE(m->String("payload", &payload).ok());
    CHECK(payload == std::string(100, static_cast<char>('a' + i)));
  }
  // Strings are not copied one by one: the three payloads lie in one copy of the frame, in
  // frame order.
  auto payload_at = [](const Decoded& d) { return MapReader::From(d.get(), "t")->Find("payload"); };
  const char* first = payload_at(kept[0])->via.str.ptr;
  const char* third = payload_at(kept[2])->via.str.ptr;
  CHECK(third > first);
  CHECK(third - first < 400);
  auto m = MapReader::From(single->get(), "test");
  std::string payload;
  REQUIRE(m->String("payload", &payload).ok());
  CHECK(payload == std::string(100, 'a'));
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

}  // namespace
}  // namespace handoff
