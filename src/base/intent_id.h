// IntentId: the 128-bit identity of an intent, written as a UUIDv7 (RFC 9562).
//
// UUIDv7 ids begin with a 48-bit Unix-millisecond timestamp, so they sort by creation time and
// can be made by any client or node without coordination. Storage keys use the 16 raw bytes;
// people and JSON see the 36-character lowercase text form.
//
// Thread safety: IntentId is a value. NewIntentId() is safe from any thread.

#ifndef HANDOFF_BASE_INTENT_ID_H_
#define HANDOFF_BASE_INTENT_ID_H_

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff {

class IntentId {
 public:
  static constexpr size_t kSize = 16;

  IntentId() { bytes_.fill(0); }

  // Parses the text form ("0190f1c2-7b3a-7c4d-8e5f-0123456789ab"); any letter case.
  static Result<IntentId> Parse(std::string_view text);
  // From the 16 raw bytes of a storage key; Corruption if the size is wrong.
  static Result<IntentId> FromBytes(std::string_view bytes);

  std::string ToString() const;
  // The same text without allocating: valid while the returned value lives.
  struct Text {
    char chars[36];
    std::string_view view() const { return {chars, sizeof(chars)}; }
    operator std::string_view() const { return view(); }
  };
  Text ToText() const;
  // The raw bytes, for storage keys. Valid while this object lives.
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  // The creation time embedded in a UUIDv7.
  int64_t UnixMs() const;
  bool IsZero() const;

  friend bool operator==(const IntentId& a, const IntentId& b) {
    return a.Word(0) == b.Word(0) && a.Word(1) == b.Word(1);
  }
  // Byte order, as the storage keys sort: two 64-bit comparisons, inline (ids are compared in
  // every ordered map of the loop; std::array's operator< calls memcmp each time).
  friend bool operator<(const IntentId& a, const IntentId& b) {
    const uint64_t ah = a.Word(0), bh = b.Word(0);
    return ah != bh ? ah < bh : a.Word(1) < b.Word(1);
  }

 private:
  // Bytes 8i to 8i + 7 as a big-endian number.
  uint64_t Word(size_t i) const {
    uint64_t v;
    std::memcpy(&v, bytes_.data() + 8 * i, sizeof(v));
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    return v;
  }

  friend IntentId NewIntentId(int64_t now_ms);
  std::array<uint8_t, kSize> bytes_;
};

// A fresh UUIDv7 for `now_ms`. Ids from one process are strictly increasing even within one
// millisecond (RFC 9562 method 1: a counter in rand_a).
IntentId NewIntentId(int64_t now_ms);

struct IntentIdHash {
  size_t operator()(const IntentId& id) const noexcept;
};

}  // namespace handoff

#endif  // HANDOFF_BASE_INTENT_ID_H_
