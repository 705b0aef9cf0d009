// What may be shown as JSON (msgpack_io.h: CheckJsonValue, IsValidUtf8): payloads, checkpoints,
// results and event details are checked once, where they enter.

#include <algorithm>
#include <cctype>
#include <cmath>
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

}  // namespace handoff
