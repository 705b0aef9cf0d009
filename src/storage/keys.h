// Key encodings shared by the Store's source files (store.cc, store_history.cc,
// migrate.cc): fixed-size keys built without allocating, big-endian integers so that keys
// sort by value. Internal to storage/.

#ifndef HANDOFF_STORAGE_KEYS_H_
#define HANDOFF_STORAGE_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "base/intent_id.h"
#include "storage/schema.h"

namespace handoff::storage {

// A key of at most N bytes, built without allocating (the hot tables' keys are a few bytes
// longer than a std::string holds inline).
template <size_t N>
class FixedKey {
 public:
  void Append(std::string_view bytes) {
    std::memcpy(data_ + size_, bytes.data(), bytes.size());
    size_ += bytes.size();
  }
  void Append(char c) { data_[size_++] = c; }
  operator std::string_view() const { return {data_, size_}; }

 private:
  char data_[N];
  size_t size_ = 0;
};

inline FixedKey<IntentId::kSize + 4> EventKey(const IntentId& id, uint32_t seq) {
  FixedKey<IntentId::kSize + 4> key;
  key.Append(id.bytes());
  for (int shift = 24; shift >= 0; shift -= 8) key.Append(static_cast<char>(seq >> shift));
  return key;
}

inline FixedKey<8> U64Key(uint64_t v) {
  FixedKey<8> key;
  for (int shift = 56; shift >= 0; shift -= 8) key.Append(static_cast<char>(v >> shift));
  return key;
}

// Whether an event has an entry in the events table (the index of each intent's history).
inline bool Indexed(const IntentId& id, uint32_t seq) {
  return seq % kEventIndexEvery == 0 || id.IsZero();
}

inline uint32_t ReadU32(std::string_view bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4 && i < bytes.size(); ++i) v = v << 8 | static_cast<uint8_t>(bytes[i]);
  return v;
}

inline uint64_t ReadU64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) v = v << 8 | static_cast<uint8_t>(bytes[i]);
  return v;
}

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_KEYS_H_
