// base/msgpack_io.h: writing, reading within limits, batches, and what may be shown as JSON.

#include <doctest/doctest.h>
#include <malloc.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "base/msgpack_io.h"
#include "base/msgpack_tree.h"

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

// DecodeTree (under Unpack) is checked against msgpack-c's own decoder: on any bytes both
// accept or both refuse, and what they accept is the same tree (compared as Pack's bytes).
std::optional<std::string> ReferenceDecode(std::string_view data, const UnpackLimits& limits) {
  msgpack::unpack_limit limit(limits.max_container, limits.max_container, limits.max_string,
                              limits.max_string, limits.max_string, limits.max_depth);
  try {
    size_t offset = 0;
    msgpack::object_handle h =
        msgpack::unpack(data.data(), data.size(), offset, nullptr, nullptr, limit);
    if (offset != data.size()) return std::nullopt;
    return Pack(h.get());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> OurDecode(std::string_view data, const UnpackLimits& limits) {
  auto decoded = Unpack(data, limits);
  if (!decoded.ok()) return std::nullopt;
  return Pack(decoded->get());
}

// Random msgpack values using every encoding (headers of every width, not only the shortest).
class RandomMsgpack {
 public:
  explicit RandomMsgpack(uint32_t seed) : rng_(seed) {}

  std::string Value(int depth) {
    std::string out;
    Append(&out, depth);
    return out;
  }

 private:
  uint64_t Below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  void Be(std::string* out, uint64_t v, size_t bytes) {
    for (size_t i = bytes; i-- > 0;) out->push_back(static_cast<char>(v >> (8 * i)));
  }
  void Bytes(std::string* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out->push_back(static_cast<char>(Below(256)));
  }
  // A length header: the fix form where it fits (when `fix` is not 0), else 8, 16 or 32 bits.
  void Header(std::string* out, size_t n, uint8_t fix, size_t fix_max, uint8_t b8, uint8_t b16,
              uint8_t b32) {
    const uint64_t pick = Below(4);
    if (fix != 0 && n <= fix_max && pick == 0) {
      out->push_back(static_cast<char>(fix | n));
    } else if (b8 != 0 && n <= 0xff && pick <= 1) {
      out->push_back(static_cast<char>(b8));
      Be(out, n, 1);
    } else if (n <= 0xffff && pick <= 2) {
      out->push_back(static_cast<char>(b16));
      Be(out, n, 2);
    } else {
      out->push_back(static_cast<char>(b32));
      Be(out, n, 4);
    }
  }
  size_t Length() {
    switch (Below(8)) {
      case 0:
        return 0;
      case 1:
        return 1 + Below(300);
      case 2:
        return Below(100) == 0 ? 65536 + Below(100) : Below(40);
      default:
        return Below(20);
    }
  }

  void Append(std::string* out, int depth) {
    const uint64_t kind = Below(depth > 0 ? 16 : 13);
    switch (kind) {
      case 0:
        out->push_back(static_cast<char>(0xc0 + (Below(2) == 0 ? 0 : 2 + Below(2))));
        return;
      case 1:
        out->push_back(static_cast<char>(Below(0x80)));  // positive fixint
        return;
      case 2:
        out->push_back(static_cast<char>(0xe0 + Below(32)));  // negative fixint
        return;
      case 3: {  // uint 8..64
        const size_t width = Below(4);
        out->push_back(static_cast<char>(0xcc + width));
        Bytes(out, size_t{1} << width);
        return;
      }
      case 4: {  // int 8..64, either sign
        const size_t width = Below(4);
        out->push_back(static_cast<char>(0xd0 + width));
        Bytes(out, size_t{1} << width);
        return;
      }
      case 5: {  // finite floats, so that the trees compare by their bytes
        if (Below(2) == 0) {
          const float f = static_cast<float>(Below(1000000)) / 7.0f - 5000.0f;
          uint32_t bits;
          std::memcpy(&bits, &f, sizeof bits);
          out->push_back(static_cast<char>(0xca));
          Be(out, bits, 4);
        } else {
          const double d = static_cast<double>(Below(1u << 30)) / 3.0 - 1e6;
          uint64_t bits;
          std::memcpy(&bits, &d, sizeof bits);
          out->push_back(static_cast<char>(0xcb));
          Be(out, bits, 8);
        }
        return;
      }
      case 6:
      case 7: {
        const size_t n = Length();
        Header(out, n, 0xa0, 31, 0xd9, 0xda, 0xdb);
        Bytes(out, n);
        return;
      }
      case 8: {
        const size_t n = Length();
        Header(out, n, 0, 0, 0xc4, 0xc5, 0xc6);
        Bytes(out, n);
        return;
      }
      case 9: {  // fixext 1..16 or ext 8/16/32
        if (Below(2) == 0) {
          const size_t width = Below(5);
          out->push_back(static_cast<char>(0xd4 + width));
          Bytes(out, 1 + (size_t{1} << width));
          return;
        }
        const size_t n = Length();
        Header(out, n, 0, 0, 0xc7, 0xc8, 0xc9);
        Bytes(out, 1 + n);
        return;
      }
      case 10:
      case 11:
      case 12: {  // a short string, the commonest value (a key, say)
        const size_t n = Below(12);
        out->push_back(static_cast<char>(0xa0 | n));
        Bytes(out, n);
        return;
      }
      case 13:
      case 14: {
        const size_t n = Below(6) == 0 ? 16 + Below(8) : Below(6);
        Header(out, n, 0x80, 15, 0, 0xde, 0xdf);
        for (size_t i = 0; i < 2 * n; ++i) Append(out, depth - 1);
        return;
      }
      default: {
        const size_t n = Below(6) == 0 ? 16 + Below(8) : Below(6);
        Header(out, n, 0x90, 15, 0, 0xdc, 0xdd);
        for (size_t i = 0; i < n; ++i) Append(out, depth - 1);
        return;
      }
    }
  }

  std::mt19937_64 rng_;
};

TEST_CASE("DecodeTreeAgreesWithMsgpackCOnEveryEncodingAndOnDamagedBytes") {
  RandomMsgpack gen(20261205);
  std::mt19937 rng(7);
  UnpackLimits tight;
  tight.max_depth = 3;
  tight.max_container = 5;
  tight.max_string = 40;
  size_t accepted = 0, damaged_refused = 0, tight_refused = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string value = gen.Value(static_cast<int>(rng() % 6));
    CAPTURE(i);
    const auto ours = OurDecode(value, {});
    REQUIRE(ours.has_value());  // well formed, within the default limits
    CHECK(ours == ReferenceDecode(value, {}));
    ++accepted;
    const auto ours_tight = OurDecode(value, tight);
    CHECK(ours_tight == ReferenceDecode(value, tight));
    if (!ours_tight) ++tight_refused;
    // Cut short at a random point, a byte changed, a byte added.
    std::string damaged = value.substr(0, rng() % value.size());
    auto got = OurDecode(damaged, {});
    CHECK(got == ReferenceDecode(damaged, {}));
    if (!got) ++damaged_refused;
    damaged = value;
    damaged[rng() % damaged.size()] = static_cast<char>(rng());
    CHECK(OurDecode(damaged, {}) == ReferenceDecode(damaged, {}));
    damaged = value + static_cast<char>(rng());
    CHECK(OurDecode(damaged, {}) == ReferenceDecode(damaged, {}));
  }
  // Every first byte, followed by a few bytes of each kind.
  for (int first = 0; first < 256; ++first) {
    for (int tail = 0; tail < 40; ++tail) {
      std::string bytes(1, static_cast<char>(first));
      for (int k = 0; k < tail; ++k) bytes.push_back(static_cast<char>(tail % 3 == 0 ? 0 : rng()));
      CAPTURE(first);
      CAPTURE(tail);
      CHECK(OurDecode(bytes, {}) == ReferenceDecode(bytes, {}));
      CHECK(OurDecode(bytes, tight) == ReferenceDecode(bytes, tight));
    }
  }
  CHECK(accepted == 3000);
  CHECK(damaged_refused > 1000);  // the comparisons above saw both outcomes
  CHECK(tight_refused > 100);
}

TEST_CASE("PackWritesWhatMsgpackCWritesForEveryKindOfValue") {
  // Pack encodes through msgpack-c's packer without its tree visitor: the bytes must be
  // msgpack::pack's, shortest headers included, for every type and width (random values whose
  // encodings use every header width, so re-encoding changes most of them).
  RandomMsgpack gen(20261206);
  std::mt19937 rng(11);
  size_t changed = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string value = gen.Value(static_cast<int>(rng() % 6));
    CAPTURE(i);
    msgpack::object_handle h = msgpack::unpack(value.data(), value.size());
    msgpack::sbuffer reference;
    msgpack::pack(reference, h.get());
    const std::string packed = Pack(h.get());
    CHECK(packed == std::string_view(reference.data(), reference.size()));
    CHECK(packed.size() <= PackedSizeBound(h.get()));
    if (packed != value) ++changed;
  }
  CHECK(changed > 1000);
  // The integer and length boundaries, each side.
  for (int64_t v :
       {int64_t{0},           int64_t{127},         int64_t{128},    int64_t{255},
        int64_t{256},         int64_t{65535},       int64_t{65536},  int64_t{4294967295},
        int64_t{4294967296},  int64_t{-1},          int64_t{-32},    int64_t{-33},
        int64_t{-128},        int64_t{-129},        int64_t{-32768}, int64_t{-32769},
        int64_t{-2147483648}, int64_t{-2147483649}, INT64_MIN,       INT64_MAX}) {
    CAPTURE(v);
    msgpack::sbuffer reference;
    msgpack::pack(reference, v);
    msgpack::object_handle h = msgpack::unpack(reference.data(), reference.size());
    CHECK(Pack(h.get()) == std::string_view(reference.data(), reference.size()));
  }
  for (size_t n : {size_t{15}, size_t{16}, size_t{31}, size_t{32}, size_t{255}, size_t{256},
                   size_t{65535}, size_t{65536}}) {
    CAPTURE(n);
    msgpack::sbuffer reference;
    msgpack::packer<msgpack::sbuffer> pk(reference);
    pk.pack_array(3);
    pk.pack(std::string(n, 's'));
    pk.pack_bin(static_cast<uint32_t>(n));
    pk.pack_bin_body(std::string(n, 'b').data(), static_cast<uint32_t>(n));
    pk.pack_map(static_cast<uint32_t>(n));
    for (size_t k = 0; k < n; ++k) {
      pk.pack(k);
      pk.pack_nil();
    }
    msgpack::object_handle h = msgpack::unpack(reference.data(), reference.size());
    CHECK(Pack(h.get()) == std::string_view(reference.data(), reference.size()));
  }
}

TEST_CASE("DecodeTreeRefusesAClaimTheBytesCannotHoldBeforeAllocating") {
  // A map claiming 2^32 - 1 entries in a few bytes: cut short, without room made for them.
  std::string claim = "\xdf\xff\xff\xff\xff\x01\x02";
  UnpackLimits wide;
  wide.max_container = SIZE_MAX;
  msgpack::zone zone(1024);
  size_t offset = 0;
  msgpack::object object;
  Status s = DecodeTree(claim, &offset, zone, wide, &object);
  CHECK(s.message().find("ends inside") != std::string::npos);
  CHECK(offset == 0);
  // Within the bytes: decoded, and the offset moves past the value only.
  const std::string two = std::string("\x92\x01\xa1x", 4) + "rest";
  CHECK(DecodeTree(two, &offset, zone, {}, &object).ok());
  CHECK(offset == 4);
  CHECK(object.via.array.size == 2);
  CHECK(object.via.array.ptr[1].as<std::string>() == "x");
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
