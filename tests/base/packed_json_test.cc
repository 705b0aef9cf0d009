// base/msgpack_io.h: IsPackedJson accepts only what Unpack and CheckJsonValue would take and
// Pack give back byte for byte, and all of what Pack writes (whole-number floats aside).

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/msgpack_io.h"

namespace handoff {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// Random values of the JSON kinds (and now and then one that is not), each header written in
// its shortest form or, now and then, a wider one: what clients send, and what they might.
class RandomJson {
 public:
  explicit RandomJson(uint64_t seed) : rng_(seed) {}

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
  bool Wide() { return Below(8) == 0; }  // a header wider than it needs, one time in eight

  void Uint(std::string* out, uint64_t v) {
    if (v < 0x80 && !Wide()) return out->push_back(static_cast<char>(v));
    if (v <= 0xff && !Wide()) return out->push_back(static_cast<char>(0xcc)), Be(out, v, 1);
    if (v <= 0xffff && !Wide()) return out->push_back(static_cast<char>(0xcd)), Be(out, v, 2);
    if (v <= 0xffffffffULL && !Wide()) {
      return out->push_back(static_cast<char>(0xce)), Be(out, v, 4);
    }
    out->push_back(static_cast<char>(0xcf));
    Be(out, v, 8);
  }
  void Int(std::string* out, int64_t v) {  // v < 0, or any value in a signed form
    const auto u = static_cast<uint64_t>(v);
    if (v >= -32 && v < 0 && !Wide()) return out->push_back(static_cast<char>(v));
    if (v >= -128 && v <= 127 && !Wide())
      return out->push_back(static_cast<char>(0xd0)), Be(out, u, 1);
    if (v >= -32768 && v <= 32767 && !Wide()) {
      return out->push_back(static_cast<char>(0xd1)), Be(out, u, 2);
    }
    if (v >= INT32_MIN && v <= INT32_MAX && !Wide()) {
      return out->push_back(static_cast<char>(0xd2)), Be(out, u, 4);
    }
    out->push_back(static_cast<char>(0xd3));
    Be(out, u, 8);
  }
  void Length(std::string* out, uint64_t n, int fix, uint64_t fix_max, int b8, int b16, int b32) {
    if (fix >= 0 && n <= fix_max && !Wide()) return out->push_back(static_cast<char>(fix | n));
    if (b8 >= 0 && n <= 0xff && !Wide())
      return out->push_back(static_cast<char>(b8)), Be(out, n, 1);
    if (n <= 0xffff && !Wide()) return out->push_back(static_cast<char>(b16)), Be(out, n, 2);
    out->push_back(static_cast<char>(b32));
    Be(out, n, 4);
  }
  void Text(std::string* out) {
    static const char* const kPieces[] = {"a", "key", "é", "日本", "🙂", " ", "\"", "0"};
    std::string text;
    const uint64_t pieces = Below(5) == 0 ? 40 + Below(80) : Below(8);
    for (uint64_t i = 0; i < pieces; ++i) text += kPieces[Below(8)];
    if (Below(40) == 0 && !text.empty()) text[Below(text.size())] = static_cast<char>(0xff);
    Length(out, text.size(), 0xa0, 31, 0xd9, 0xda, 0xdb);
    *out += text;
  }
  void Float(std::string* out) {
    double d;
    switch (Below(6)) {
      case 0:
        d = static_cast<double>(Below(1000));  // a whole number
        break;
      case 1:
        d = Below(2) ? std::numeric_limits<double>::quiet_NaN()
                     : std::numeric_limits<double>::infinity();
        break;
      default:
        d = static_cast<double>(Below(1'000'000)) / 1000.0 + 0.5;
    }
    if (Below(3) == 0) {
      const auto f = static_cast<float>(d);
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      out->push_back(static_cast<char>(0xca));
      Be(out, bits, 4);
    } else {
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      out->push_back(static_cast<char>(0xcb));
      Be(out, bits, 8);
    }
  }
  void Append(std::string* out, int depth) {
    switch (depth <= 0 ? Below(7) : Below(10)) {
      case 0:
        return out->push_back(static_cast<char>(Below(3) == 0 ? 0xc0 : 0xc2 + Below(2)));
      case 1: {
        const int shift = static_cast<int>(Below(64));
        const uint64_t v = Below(2) ? Below(300) : (rng_() >> shift);
        return Below(6) == 0 ? Int(out, static_cast<int64_t>(v & 0x7fffffff)) : Uint(out, v);
      }
      case 2: {
        const int shift = static_cast<int>(Below(63));
        return Int(out, -1 - static_cast<int64_t>(Below(2) ? Below(300) : (rng_() >> (shift + 1))));
      }
      case 3:
        return Float(out);
      case 4:
      case 5:
        return Text(out);
      case 6:
        if (Below(10) == 0) {  // not JSON: binary
          out->push_back(static_cast<char>(0xc4));
          out->push_back(static_cast<char>(1));
          out->push_back('x');
          return;
        }
        return Text(out);
      case 7:
      case 8: {
        const uint64_t n = Below(5) == 0 ? 16 + Below(4) : Below(5);
        Length(out, n, 0x80, 15, -1, 0xde, 0xdf);
        for (uint64_t i = 0; i < n; ++i) {
          if (Below(30) == 0) {
            Uint(out, i);  // not JSON: a key that is not a string
          } else {
            Text(out);
          }
          Append(out, depth - 1);
        }
        return;
      }
      default: {
        const uint64_t n = Below(5) == 0 ? 16 + Below(4) : Below(5);
        Length(out, n, 0x90, 15, -1, 0xdc, 0xdd);
        for (uint64_t i = 0; i < n; ++i) Append(out, depth - 1);
        return;
      }
    }
  }

  std::mt19937_64 rng_;
};

bool HasWholeFloat(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return std::isfinite(o.via.f64) && o.via.f64 == std::trunc(o.via.f64);
    case msgpack::type::ARRAY:
      for (const msgpack::object& v : o.via.array) {
        if (HasWholeFloat(v)) return true;
      }
      return false;
    case msgpack::type::MAP:
      for (const msgpack::object_kv& kv : o.via.map) {
        if (HasWholeFloat(kv.key) || HasWholeFloat(kv.val)) return true;
      }
      return false;
    default:
      return false;
  }
}

TEST_CASE("IsPackedJsonTakesOnlyWhatTheLongWayWouldStoreByteForByte") {
  RandomJson gen(20261206);
  size_t packed = 0, wider = 0, not_json = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string value = gen.Value(static_cast<int>(i % 4));
    CAPTURE(i);
    auto decoded = Unpack(value);
    REQUIRE(decoded.ok());
    const bool json = CheckJsonValue("v", decoded->get()).ok();
    const std::string repacked = Pack(decoded->get());
    if (IsPackedJson(value)) {
      // Sound: what it takes, the long way takes too and stores as the same bytes.
      CHECK(json);
      CHECK(repacked == value);
      ++packed;
    } else if (!json) {
      ++not_json;
    } else {
      ++wider;
    }
    // Complete where it matters: what Pack writes (what our clients send), it takes, whole
    // floats aside.
    if (json && !HasWholeFloat(decoded->get())) CHECK(IsPackedJson(repacked));
    // Cut short, or with a byte more, it is not one whole value.
    CHECK_FALSE(IsPackedJson(std::string_view(value).substr(0, value.size() - 1)));
    CHECK_FALSE(IsPackedJson(value + '\0'));
  }
  // Every outcome was seen, often.
  CHECK(packed > 5000);
  CHECK(wider > 1000);
  CHECK(not_json > 1000);
}

TEST_CASE("IsPackedJsonRefusesEachWiderFormAndEveryValueJsonCannotShow") {
  CHECK(IsPackedJson(Bytes({0x05})));
  CHECK(IsPackedJson(Bytes({0xcc, 0x80})));
  CHECK(IsPackedJson(Bytes({0xff})));        // -1
  CHECK(IsPackedJson(Bytes({0xd0, 0x80})));  // -128
  CHECK(IsPackedJson(Bytes({0xa2, 'o', 'k'})));
  CHECK(IsPackedJson(Bytes({0x81, 0xa1, 'k', 0xc0})));
  CHECK(IsPackedJson(Bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0})));  // 1.5
  CHECK_FALSE(IsPackedJson(Bytes({0xcc, 0x05})));                    // 5 in a uint8
  CHECK_FALSE(IsPackedJson(Bytes({0xd0, 0x05})));                    // 5 signed
  CHECK_FALSE(IsPackedJson(Bytes({0xd1, 0xff, 0xff})));              // -1 in an int16
  CHECK_FALSE(IsPackedJson(Bytes({0xd9, 0x02, 'o', 'k'})));          // a short string in a str8
  CHECK_FALSE(IsPackedJson(Bytes({0xde, 0x00, 0x01, 0xa1, 'k', 0xc0})));   // map16 of one
  CHECK_FALSE(IsPackedJson(Bytes({0xdc, 0x00, 0x01, 0xc0})));              // array16 of one
  CHECK_FALSE(IsPackedJson(Bytes({0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0})));  // 1.0
  CHECK_FALSE(IsPackedJson(Bytes({0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})));  // NaN
  CHECK_FALSE(IsPackedJson(Bytes({0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0})));  // infinity
  CHECK_FALSE(IsPackedJson(Bytes({0xa1, 0xff})));                          // not UTF-8
  CHECK_FALSE(IsPackedJson(Bytes({0xc4, 0x01, 'x'})));                     // binary
  CHECK_FALSE(IsPackedJson(Bytes({0xd4, 0x01, 0x00})));                    // extension
  CHECK_FALSE(IsPackedJson(Bytes({0x81, 0x01, 0xc0})));                    // an integer key
  CHECK_FALSE(IsPackedJson(Bytes({0x81, 0xa1, 0xff, 0xc0})));              // a key not UTF-8
  CHECK_FALSE(IsPackedJson(Bytes({0xc1})));                                // never used
  CHECK_FALSE(IsPackedJson(""));
  CHECK_FALSE(IsPackedJson(Bytes({0xdd, 0xff, 0xff, 0xff, 0xff})));  // a count past the bytes
  // 64 arrays deep is the deepest it looks; deeper takes the long way.
  std::string deep(64, static_cast<char>(0x91));
  deep.push_back(static_cast<char>(0xc0));
  CHECK(IsPackedJson(deep));
  CHECK_FALSE(IsPackedJson(std::string(1, static_cast<char>(0x91)) + deep));
}

TEST_CASE("StoredJsonKeepsPackedBytesAndPacksTheRest") {
  const std::string packed("\x82\xa1n\x05\xa1s\xa2ok", 9);  // {"n": 5, "s": "ok"}
  const std::string wide("\xde\x00\x02\xa1n\xcc\x05\xa1s\xd9\x02ok", 13);
  for (const std::string& sent : {packed, wide}) {
    auto value = Unpack(sent);
    REQUIRE(value.ok());
    for (std::optional<std::string_view> encoded :
         {std::optional<std::string_view>(sent), std::optional<std::string_view>()}) {
      auto stored = StoredJson("payload", value->get(), encoded);
      REQUIRE(stored.ok());
      CHECK(*stored == packed);
    }
  }
  // Refused as the long way refuses it, with its message, bytes or not.
  const std::string binary("\x81\xa1k\xc4\x01x", 6);
  auto value = Unpack(binary);
  REQUIRE(value.ok());
  auto refused = StoredJson("payload", value->get(), std::string_view(binary));
  CHECK(refused.status().IsInvalidArgument());
  CHECK(refused.status().message() == CheckJsonValue("payload", value->get()).message());
}

TEST_CASE("FieldBytesAreWhereEachTopLevelValueCame") {
  const std::string wide_value("\xde\x00\x01\xa1k\xcc\x05", 7);  // {"k": 5}, wide headers
  MsgWriter w;
  w.BeginMap();
  w.Field("n", int64_t{-7});
  w.FieldRaw("wide", wide_value);
  w.Key("gone");
  w.Nil();
  w.Field("text", std::string(300, 't'));
  w.Field("n", int64_t{9});  // a second "n": the first is the one
  w.EndMap();
  const std::string map = w.Release();
  auto decoded = Unpack(map, {}, KeepSpans::kYes);
  REQUIRE(decoded.ok());
  CHECK(decoded->FieldBytes("n") == std::string_view("\xf9", 1));  // -7
  CHECK(decoded->FieldBytes("wide") == wide_value);                // as it came
  CHECK(decoded->FieldBytes("gone") == std::string_view("\xc0", 1));
  auto text = decoded->FieldBytes("text");
  REQUIRE(text.has_value());
  CHECK(text->size() == 303);
  CHECK_FALSE(decoded->FieldBytes("missing").has_value());
  CHECK_FALSE(decoded->FieldBytes("").has_value());
  // Each message of a batch has its own.
  const std::string batch = JoinArray({map, std::string("\x81\xa1n\x01", 4)});
  auto items = UnpackArrayItems(batch, 10, {}, KeepSpans::kYes);
  REQUIRE(items.ok());
  REQUIRE(items->size() == 2);
  CHECK((*items)[0].handle.FieldBytes("wide") == wide_value);
  CHECK((*items)[1].handle.FieldBytes("n") == std::string_view("\x01", 1));
  // Only a map has fields; without KeepSpans, none are noted.
  auto array = Unpack(std::string("\x91\x01", 2), {}, KeepSpans::kYes);
  REQUIRE(array.ok());
  CHECK_FALSE(array->FieldBytes("n").has_value());
  auto plain = Unpack(map);
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->FieldBytes("n").has_value());
}

// Every map in `o`, depth first.
void Maps(const msgpack::object& o, std::vector<const msgpack::object*>* out) {
  if (o.type == msgpack::type::ARRAY) {
    for (const msgpack::object& v : o.via.array) Maps(v, out);
  } else if (o.type == msgpack::type::MAP) {
    out->push_back(&o);
    for (const msgpack::object_kv& kv : o.via.map) {
      Maps(kv.key, out);
      Maps(kv.val, out);
    }
  }
}

TEST_CASE("PackedJsonMapFindsAMapsBytesFromItsFirstKeyOnlyWhenTheyArePacksOwn") {
  RandomJson gen(20261207);
  std::mt19937_64 rng(7);
  size_t found = 0, not_found = 0;
  for (int i = 0; i < 20000; ++i) {
    CAPTURE(i);
    // Inside an array, after a string of any length: maps lie anywhere in the frame, after
    // any bytes.
    std::string frame = Bytes({0x92, 0xd9});
    const size_t filler = rng() % 200;
    frame.push_back(static_cast<char>(filler));
    frame.append(filler, static_cast<char>(0x80 + rng() % 0x60));  // header-like bytes
    const std::string value = gen.Value(static_cast<int>(1 + i % 4));
    frame += value;
    auto decoded = Unpack(frame);
    REQUIRE(decoded.ok());
    std::vector<const msgpack::object*> maps;
    Maps(decoded->get(), &maps);
    const bool all_packed = IsPackedJson(value);
    for (const msgpack::object* m : maps) {
      const std::optional<std::string_view> bytes = PackedJsonMap(decoded->bytes(), *m);
      if (bytes) {
        // Sound: exactly what the long way stores.
        CHECK(CheckJsonValue("v", *m).ok());
        CHECK(*bytes == Pack(*m));
        ++found;
      } else {
        ++not_found;
        // Complete where the whole value is Pack's: every map in it, empty ones aside.
        if (m->via.map.size > 0) CHECK_FALSE(all_packed);
      }
    }
  }
  CHECK(found > 3000);
  CHECK(not_found > 3000);
}

TEST_CASE("PackedJsonMapRefusesWiderHeadersOtherKeysAndMapsFromElsewhere") {
  const std::string packed("\x82\xa1n\x05\xa1s\xa2ok", 9);  // {"n": 5, "s": "ok"}
  auto decoded = Unpack(packed);
  REQUIRE(decoded.ok());
  CHECK(PackedJsonMap(decoded->bytes(), decoded->get()) == std::string_view(packed));
  // Not in the bytes given: another decode's, or none.
  auto other = Unpack(packed);
  REQUIRE(other.ok());
  CHECK_FALSE(PackedJsonMap(decoded->bytes(), other->get()).has_value());
  CHECK_FALSE(PackedJsonMap({}, decoded->get()).has_value());
  CHECK_FALSE(PackedJsonMap(Decoded().bytes(), decoded->get()).has_value());
  for (const std::string& sent : {
           std::string("\xde\x00\x02\xa1n\x05\xa1s\xa2ok", 11),  // map16 of two
           std::string("\xdf\x00\x00\x00\x01\xa1n\x05", 8),      // map32 of one
           std::string("\x81\xd9\x01n\x05", 5),                  // a key in a str8
           std::string("\xde\x00\x01\xd9\x01n\x05", 7),          // both wider
           std::string("\x82\xa1n\xcc\x05\xa1s\xa2ok", 10),      // 5 in a uint8
           std::string("\x81\xa1k\xc4\x01x", 6),                 // a binary value
           std::string("\x81\x01\xc0", 3),                       // an integer key
           std::string("\x80", 1),                               // empty
       }) {
    CAPTURE(sent);
    auto d = Unpack(sent);
    REQUIRE(d.ok());
    CHECK_FALSE(PackedJsonMap(d->bytes(), d->get()).has_value());
  }
  CHECK_FALSE(PackedJsonMap(decoded->bytes(), msgpack::object()).has_value());  // not a map
}

}  // namespace
}  // namespace handoff
