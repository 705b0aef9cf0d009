#include "base/intent_id.h"

#include <sodium.h>

#include <cstring>
#include <functional>
#include <mutex>

namespace handoff {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    // sodium_init only fails when no entropy source exists; ids would not be unique then.
    if (sodium_init() < 0) std::abort();
  });
}

}  // namespace

Result<IntentId> IntentId::Parse(std::string_view text) {
  auto invalid = [&] {
    return Status::InvalidArgument("malformed intent id '" + std::string(text.substr(0, 64)) +
                                   "': expected a UUID like 0190f1c2-7b3a-7c4d-8e5f-0123456789ab");
  };
  if (text.size() != 36) return invalid();
  IntentId id;
  size_t out = 0;
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return invalid();
      ++i;
      continue;
    }
    int hi = HexValue(text[i]);
    int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return invalid();
    id.bytes_[out++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

Result<IntentId> IntentId::FromBytes(std::string_view bytes) {
  if (bytes.size() != kSize) return Status::Corruption("intent id key is not 16 bytes");
  IntentId id;
  std::memcpy(id.bytes_.data(), bytes.data(), kSize);
  return id;
}

IntentId::Text IntentId::ToText() const {
  static constexpr char kHex[] = "0123456789abcdef";
  Text t;
  char* out = t.chars;
  for (size_t i = 0; i < kSize; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
    *out++ = kHex[bytes_[i] >> 4];
    *out++ = kHex[bytes_[i] & 0xf];
  }
  return t;
}

std::string IntentId::ToString() const { return std::string(ToText().view()); }

int64_t IntentId::UnixMs() const {
  int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = ms << 8 | bytes_[i];
  return ms;
}

bool IntentId::IsZero() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

IntentId NewIntentId(int64_t now_ms) {
  EnsureSodium();
  static std::mutex mu;
  static int64_t last_ms = 0;
  static uint16_t counter = 0;  // 12 bits used

  IntentId id;
  randombytes_buf(id.bytes_.data(), id.bytes_.size());
  int64_t ms;
  uint16_t seq;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (now_ms > last_ms) {
      last_ms = now_ms;
      counter = static_cast<uint16_t>(id.bytes_[6] & 0x03);  // random start, room to count up
    } else if (++counter > 0x0fff) {
      ++last_ms;  // counter exhausted: borrow the next millisecond
      counter = 0;
    }
    ms = last_ms;
    seq = counter;
  }
  for (int i = 5; i >= 0; --i) {
    id.bytes_[i] = static_cast<uint8_t>(ms & 0xff);
    ms >>= 8;
  }
  id.bytes_[6] = static_cast<uint8_t>(0x70 | (seq >> 8));  // version 7
  id.bytes_[7] = static_cast<uint8_t>(seq & 0xff);
  id.bytes_[8] = static_cast<uint8_t>(0x80 | (id.bytes_[8] & 0x3f));  // RFC 9562 variant
  return id;
}

size_t IntentIdHash::operator()(const IntentId& id) const noexcept {
  // A UUIDv7's last 8 bytes are random (and the first 8 its time and a counter): mixing the
  // halves is as good as hashing all 16 bytes, and much cheaper.
  uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, id.bytes().data(), 8);
  std::memcpy(&lo, id.bytes().data() + 8, 8);
  return static_cast<size_t>((hi * 0x9e3779b97f4a7c15ULL) ^ lo);
}

}  // namespace handoff
