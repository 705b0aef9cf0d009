#include "base/intent_id.h"

#include <pthread.h>
#include <sodium.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>

namespace handoff {
namespace {

// Hex digit -> value, and -1 for every other byte: ids are parsed from every request and
// peer message, several per round trip, so a lookup rather than a chain of range tests.
constexpr std::array<int8_t, 256> kHexValues = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - 'A' + 10);
  return t;
}();

// Bumped in a forked child (pthread_atfork), so that a pool copied from the parent is
// refilled rather than handing the child the parent's next bytes.
std::atomic<uint64_t> fork_generation{0};

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    // sodium_init only fails when no entropy source exists; ids would not be unique then.
    if (sodium_init() < 0) std::abort();
    pthread_atfork(nullptr, nullptr,
                   [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
  });
}

// Random bytes for ids, drawn a page at a time: randombytes_buf makes a getrandom system call
// each time, and a sender makes an id per message (on a virtual machine a system call costs
// microseconds). Per thread, so no lock; refilled after a fork.
void RandomBytes(uint8_t* out, size_t n) {
  struct Pool {
    std::array<uint8_t, 4096> bytes;
    size_t used = sizeof(bytes);
    uint64_t generation = 0;
  };
  thread_local Pool pool;
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (pool.used + n > pool.bytes.size() || pool.generation != generation) {
    // A fresh key from the system each time, expanded with ChaCha20: randombytes_buf asks
    // the kernel 256 bytes per system call, this once per page.
    unsigned char seed[randombytes_SEEDBYTES];
    randombytes_buf(seed, sizeof(seed));
    randombytes_buf_deterministic(pool.bytes.data(), pool.bytes.size(), seed);
    sodium_memzero(seed, sizeof(seed));
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(out, pool.bytes.data() + pool.used, n);
  pool.used += n;
}

}  // namespace

Result<IntentId> IntentId::Parse(std::string_view text) {
  auto invalid = [&] {
    return Status::InvalidArgument("malformed intent id '" + std::string(text.substr(0, 64)) +
                                   "': expected a UUID like 0190f1c2-7b3a-7c4d-8e5f-0123456789ab");
  };
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return invalid();
  }
  // Where each of the 16 bytes' two digits start: 8-4-4-4-12 digits between the dashes.
  static constexpr uint8_t kAt[kSize] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  IntentId id;
  int bad = 0;  // any digit's -1 makes it negative
  for (size_t i = 0; i < kSize; ++i) {
    const int hi = kHexValues[static_cast<uint8_t>(text[kAt[i]])];
    const int lo = kHexValues[static_cast<uint8_t>(text[kAt[i] + 1])];
    bad |= hi | lo;
    id.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (bad < 0) return invalid();
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
  RandomBytes(id.bytes_.data(), id.bytes_.size());
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
