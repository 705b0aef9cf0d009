// What may be shown as JSON (msgpack_io.h: CheckJsonValue, IsValidUtf8, IsPackedJson): payloads,
// checkpoints, results and event details are checked once, where they enter.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/msgpack_io.h"

namespace handoff {

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII eight bytes at a time: payloads are mostly ASCII, and a byte at a time cost a
    // send of 1 KiB as much as the rest of its checks together (docs/performance.md).
    constexpr uint64_t kHighBits = 0x8080808080808080ULL;
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & kHighBits) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;  // a continuation byte first, an overlong lead (c0, c1) or past f4
    }
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += n + 1;
  }
  return true;
}

namespace {

// Where a value sits inside the one being checked: a chain from the value up to the field, so
// that the path is spelled only when there is an error to report.
struct JsonPath {
  const JsonPath* parent;
  std::string_view key;  // a map entry's key, or
  uint32_t index;        // an array element's index when key is null
  bool is_root;

  std::string ToString() const {
    if (is_root) return std::string(key);
    std::string out = parent->ToString();
    if (key.data() == nullptr) return out + "[" + std::to_string(index) + "]";
    const bool plain =
        !key.empty() && key.size() <= 40 && std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
    if (plain) return out + "." + std::string(key);
    std::string shown;
    for (char c : key.substr(0, 40)) {
      shown += std::isprint(static_cast<unsigned char>(c)) && c != '"' ? c : '?';
    }
    return out + "[\"" + shown + (key.size() > 40 ? "...\"]" : "\"]");
  }
};

Status NotJson(const JsonPath& path, std::string_view why) {
  return Status::InvalidArgument(path.ToString() + ": " + std::string(why));
}

Status CheckJson(const JsonPath& path, const msgpack::object& object) {
  switch (object.type) {
    case msgpack::type::NIL:
    case msgpack::type::BOOLEAN:
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return Status::OK();
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (std::isfinite(object.via.f64)) return Status::OK();
      return NotJson(path, "NaN and infinite numbers cannot be shown as JSON");
    case msgpack::type::STR:
      if (IsValidUtf8({object.via.str.ptr, object.via.str.size})) return Status::OK();
      return NotJson(path, "a string that is not valid UTF-8 cannot be shown as JSON");
    case msgpack::type::BIN:
      return NotJson(path, "binary values cannot be shown as JSON; send a string (base64)");
    case msgpack::type::EXT:
      return NotJson(path, "msgpack extension values cannot be shown as JSON");
    case msgpack::type::ARRAY: {
      const msgpack::object_array& a = object.via.array;
      for (uint32_t i = 0; i < a.size; ++i) {
        HANDOFF_RETURN_IF_ERROR(CheckJson(JsonPath{&path, {}, i, false}, a.ptr[i]));
      }
      return Status::OK();
    }
    case msgpack::type::MAP: {
      const msgpack::object_map& m = object.via.map;
      for (uint32_t i = 0; i < m.size; ++i) {
        const msgpack::object_kv& kv = m.ptr[i];
        if (kv.key.type != msgpack::type::STR) {
          return NotJson(path, "a map key is " + std::string(MsgTypeName(kv.key)) +
                                   "; JSON object keys are strings");
        }
        const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (!IsValidUtf8(key)) {
          return NotJson(path, "a map key is not valid UTF-8; JSON object keys are text");
        }
        // A key of "" still names an entry: its data() is never null.
        HANDOFF_RETURN_IF_ERROR(
            CheckJson(JsonPath{&path, key.empty() ? "" : key, 0, false}, kv.val));
      }
      return Status::OK();
    }
  }
  return NotJson(path, "a value of an unknown msgpack type");
}

}  // namespace

Status CheckJsonValue(std::string_view field, const msgpack::object& object) {
  return CheckJson(JsonPath{nullptr, field, 0, true}, object);
}

// IsPackedJson: the same rules read from the bytes, with the headers Pack writes, so that a
// value a node encoded needs no tree, check or re-encoding to be taken as it is.
namespace {

// The deepest IsPackedJson looks (Unpack's default limit): deeper values take the long way.
constexpr size_t kMaxDepth = 64;

// Walks encoded msgpack from its start. Every read checks the bytes left; a failed one leaves
// the reader failed (ok() false) and reads nothing more.
class Walker {
 public:
  explicit Walker(std::string_view data)
      : p_(reinterpret_cast<const uint8_t*>(data.data())), end_(p_ + data.size()) {}

  bool ok() const { return ok_; }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  const char* position() const { return reinterpret_cast<const char*>(p_); }

  // A value's header: its first byte and what follows it before its body (a length or count
  // for a string, binary, extension, array or map; the value itself for a number).
  enum class Kind { kNil, kBool, kUint, kInt, kFloat32, kFloat64, kStr, kBin, kExt, kArray, kMap };
  struct Header {
    Kind kind = Kind::kNil;
    uint64_t n = 0;            // str/bin/ext bytes, array values, map entries
    uint64_t u = 0;            // kUint
    int64_t i = 0;             // kInt
    bool signed_form = false;  // kUint read from a signed encoding (0xd0-0xd3)
    double f = 0;              // kFloat32, kFloat64
  };

  bool ReadHeader(Header* h) {
    if (!Need(1)) return false;
    const uint8_t b = *p_++;
    h->n = 0;
    h->signed_form = false;
    if (b <= 0x7f) return Set(h, Kind::kUint, b);
    if (b >= 0xe0) return SetInt(h, static_cast<int8_t>(b));
    if (b <= 0x8f) return SetCount(h, Kind::kMap, b & 0x0f);
    if (b <= 0x9f) return SetCount(h, Kind::kArray, b & 0x0f);
    if (b <= 0xbf) return SetCount(h, Kind::kStr, b & 0x1f);
    switch (b) {
      case 0xc0:
        h->kind = Kind::kNil;
        return true;
      case 0xc2:
      case 0xc3:
        h->kind = Kind::kBool;
        return true;
      case 0xc4:
        return Counted(h, Kind::kBin, 1);
      case 0xc5:
        return Counted(h, Kind::kBin, 2);
      case 0xc6:
        return Counted(h, Kind::kBin, 4);
      case 0xc7:
        return Counted(h, Kind::kExt, 1) && Skip(1);  // and its type byte
      case 0xc8:
        return Counted(h, Kind::kExt, 2) && Skip(1);
      case 0xc9:
        return Counted(h, Kind::kExt, 4) && Skip(1);
      case 0xca: {
        uint64_t bits;
        if (!Big(4, &bits)) return false;
        float f;
        const auto b32 = static_cast<uint32_t>(bits);
        std::memcpy(&f, &b32, sizeof f);
        h->kind = Kind::kFloat32;
        h->f = f;
        return true;
      }
      case 0xcb: {
        uint64_t bits;
        if (!Big(8, &bits)) return false;
        h->kind = Kind::kFloat64;
        std::memcpy(&h->f, &bits, sizeof bits);
        return true;
      }
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf: {
        uint64_t v;
        if (!Big(size_t{1} << (b - 0xcc), &v)) return false;
        return Set(h, Kind::kUint, v);
      }
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3: {
        const size_t bytes = size_t{1} << (b - 0xd0);
        uint64_t v;
        if (!Big(bytes, &v)) return false;
        // Sign-extend from its width.
        const int shift = static_cast<int>(64 - 8 * bytes);
        h->signed_form = true;
        return SetInt(h, static_cast<int64_t>(v << shift) >> shift);
      }
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        h->kind = Kind::kExt;
        h->n = uint64_t{1} << (b - 0xd4);
        return Skip(1);  // the type byte
      case 0xd9:
        return Counted(h, Kind::kStr, 1);
      case 0xda:
        return Counted(h, Kind::kStr, 2);
      case 0xdb:
        return Counted(h, Kind::kStr, 4);
      case 0xdc:
        return Counted(h, Kind::kArray, 2);
      case 0xdd:
        return Counted(h, Kind::kArray, 4);
      case 0xde:
        return Counted(h, Kind::kMap, 2);
      case 0xdf:
        return Counted(h, Kind::kMap, 4);
      default:  // 0xc1, never used
        return Fail();
    }
  }

  // A str/bin/ext body of n bytes.
  bool Body(uint64_t n, std::string_view* out) {
    if (!Need(n)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  bool Fail() {
    ok_ = false;
    p_ = end_;
    return false;
  }
  bool Need(uint64_t n) { return ok_ && (n <= left() || Fail()); }
  bool Skip(uint64_t n) {
    if (!Need(n)) return false;
    p_ += n;
    return true;
  }
  bool Big(size_t bytes, uint64_t* v) {
    if (!Need(bytes)) return false;
    uint64_t x = 0;
    for (size_t k = 0; k < bytes; ++k) x = (x << 8) | p_[k];
    p_ += bytes;
    *v = x;
    return true;
  }
  bool Set(Header* h, Kind kind, uint64_t v) {
    h->kind = kind;
    h->u = v;
    return true;
  }
  // As msgpack-c and our decoder: a signed encoding of a value >= 0 reads as unsigned.
  bool SetInt(Header* h, int64_t v) {
    if (v >= 0) {
      h->kind = Kind::kUint;
      h->u = static_cast<uint64_t>(v);
      h->i = v;
      return true;
    }
    h->kind = Kind::kInt;
    h->i = v;
    return true;
  }
  bool SetCount(Header* h, Kind kind, uint64_t n) {
    h->kind = kind;
    h->n = n;
    return true;
  }
  bool Counted(Header* h, Kind kind, size_t bytes) {
    h->kind = kind;
    return Big(bytes, &h->n);
  }

  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

// The bytes Pack takes for the header of an unsigned integer, a negative one, and a length or
// count (msgpack-c's packer: the smallest form; str8 exists for strings, not for arrays/maps).
size_t UintBytes(uint64_t v) {
  if (v < 0x80) return 1;
  if (v <= 0xff) return 2;
  if (v <= 0xffff) return 3;
  if (v <= 0xffffffffULL) return 5;
  return 9;
}
size_t IntBytes(int64_t v) {  // v < 0
  if (v >= -32) return 1;
  if (v >= -128) return 2;
  if (v >= -32768) return 3;
  if (v >= -2147483648LL) return 5;
  return 9;
}
size_t StrHeaderBytes(uint64_t n) {
  if (n < 32) return 1;
  if (n <= 0xff) return 2;
  if (n <= 0xffff) return 3;
  return 5;
}
size_t ContainerHeaderBytes(uint64_t n) {
  if (n < 16) return 1;
  if (n <= 0xffff) return 3;
  return 5;
}

// One JSON value as Pack would encode it; see IsPackedJson.
bool PackedJson(Walker& w, size_t depth) {
  const char* start = w.position();
  Walker::Header h;
  if (!w.ReadHeader(&h)) return false;
  const auto header = static_cast<size_t>(w.position() - start);
  switch (h.kind) {
    case Walker::Kind::kNil:
    case Walker::Kind::kBool:
      return true;
    case Walker::Kind::kUint:  // Pack writes a value >= 0 unsigned
      return !h.signed_form && header == UintBytes(h.u);
    case Walker::Kind::kInt:
      return header == IntBytes(h.i);
    case Walker::Kind::kFloat32:
    case Walker::Kind::kFloat64:
      // Finite, and not a whole number: a packer may write those as integers, so they take
      // the long way rather than this one relying on what it does.
      return std::isfinite(h.f) && h.f != std::trunc(h.f);
    case Walker::Kind::kStr: {
      std::string_view text;
      return header == StrHeaderBytes(h.n) && w.Body(h.n, &text) && IsValidUtf8(text);
    }
    case Walker::Kind::kArray:
      if (header != ContainerHeaderBytes(h.n) || depth >= kMaxDepth || h.n > w.left()) {
        return false;
      }
      for (uint64_t k = 0; k < h.n; ++k) {
        if (!PackedJson(w, depth + 1)) return false;
      }
      return true;
    case Walker::Kind::kMap:
      if (header != ContainerHeaderBytes(h.n) || depth >= kMaxDepth || 2 * h.n > w.left()) {
        return false;
      }
      for (uint64_t k = 0; k < h.n; ++k) {
        const char* key_start = w.position();
        Walker::Header key;
        std::string_view text;
        if (!w.ReadHeader(&key) || key.kind != Walker::Kind::kStr) return false;
        if (static_cast<size_t>(w.position() - key_start) != StrHeaderBytes(key.n)) return false;
        if (!w.Body(key.n, &text) || !IsValidUtf8(text)) return false;
        if (!PackedJson(w, depth + 1)) return false;
      }
      return true;
    default:  // binary and extension values are not JSON
      return false;
  }
}

}  // namespace

bool IsPackedJson(std::string_view encoded) {
  Walker w(encoded);
  return PackedJson(w, 0) && w.ok() && w.left() == 0;
}

std::optional<std::string_view> PackedJsonMap(std::string_view decoded_from,
                                              const msgpack::object& map) {
  if (map.type != msgpack::type::MAP || map.via.map.size == 0) return std::nullopt;
  const msgpack::object& key = map.via.map.ptr[0].key;
  if (key.type != msgpack::type::STR) return std::nullopt;
  // Where the map begins if its headers are the smallest: right before its first key's.
  const size_t headers = ContainerHeaderBytes(map.via.map.size) + StrHeaderBytes(key.via.str.size);
  const auto from = reinterpret_cast<uintptr_t>(decoded_from.data());
  const auto key_at = reinterpret_cast<uintptr_t>(key.via.str.ptr);
  if (key_at < from + headers || key_at > from + decoded_from.size()) return std::nullopt;
  const std::string_view rest = decoded_from.substr(key_at - headers - from);
  // The map's count and its first key's length and place as the tree has them; PackedJson
  // then checks that those headers are the smallest, and everything after them.
  Walker probe(rest);
  Walker::Header h;
  if (!probe.ReadHeader(&h) || h.kind != Walker::Kind::kMap || h.n != map.via.map.size ||
      !probe.ReadHeader(&h) || h.kind != Walker::Kind::kStr || h.n != key.via.str.size ||
      probe.position() != key.via.str.ptr) {
    return std::nullopt;
  }
  Walker w(rest);
  if (!PackedJson(w, 0) || !w.ok()) return std::nullopt;
  return rest.substr(0, static_cast<size_t>(w.position() - rest.data()));
}

Result<std::string> StoredJson(std::string_view field, const msgpack::object& value,
                               std::optional<std::string_view> encoded) {
  if (encoded && IsPackedJson(*encoded)) return std::string(*encoded);
  HANDOFF_RETURN_IF_ERROR(CheckJsonValue(field, value));
  return Pack(value);
}

}  // namespace handoff
