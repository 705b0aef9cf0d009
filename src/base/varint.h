// LEB128 varints: seven bits per byte, least significant first, the high bit set on every byte
// but the last. The stored form of records (records.cc) and the write-ahead log's write sets
// (storage/write_set.cc) write their integers and lengths so.

#ifndef HANDOFF_BASE_VARINT_H_
#define HANDOFF_BASE_VARINT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace handoff {

// The most bytes a 64-bit value takes.
inline constexpr size_t kMaxVarintBytes = 10;

// Writes `v` at `out`, which has room for kMaxVarintBytes; returns the bytes written.
inline size_t PutVarint(char* out, uint64_t v) {
  size_t n = 0;
  for (; v >= 0x80; v >>= 7) out[n++] = static_cast<char>(v | 0x80);
  out[n++] = static_cast<char>(v);
  return n;
}

// Reads the varint at the front of `*in`, of at most `max_bytes` bytes, into `*v` and takes it
// off `*in`. False, leaving `*in` as it was, when it is cut short, runs past `max_bytes` or
// past 64 bits.
inline bool GetVarint(std::string_view* in, uint64_t* v, size_t max_bytes = kMaxVarintBytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < max_bytes && i < kMaxVarintBytes && i < in->size(); ++i) {
    const auto byte = static_cast<uint8_t>((*in)[i]);
    const uint64_t bits = byte & 0x7f;
    if (i == kMaxVarintBytes - 1 && bits > 1) return false;  // past 64 bits
    value |= bits << (7 * i);
    if ((byte & 0x80) == 0) {
      *v = value;
      in->remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

}  // namespace handoff

#endif  // HANDOFF_BASE_VARINT_H_
