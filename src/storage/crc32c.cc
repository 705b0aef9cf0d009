#include "storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HANDOFF_CRC32C_X86 1
#endif

namespace handoff::storage {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // Castagnoli, bit-reversed

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

#ifdef HANDOFF_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint64_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));  // any alignment; a plain load on x86
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

bool DetectSse42() {
  __builtin_cpu_init();  // may run before the constructor that would otherwise do it
  return __builtin_cpu_supports("sse4.2");
}

const bool kHaveSse42 = DetectSse42();
#endif

}  // namespace

uint32_t Crc32cPortable(uint32_t crc, std::string_view data) {
  uint32_t c = ~crc;
  for (unsigned char b : data) c = kTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return ~c;
}

bool Crc32cAccelerated() {
#ifdef HANDOFF_CRC32C_X86
  return kHaveSse42;
#else
  return false;
#endif
}

uint32_t Crc32c(uint32_t crc, std::string_view data) {
#ifdef HANDOFF_CRC32C_X86
  if (kHaveSse42) return Crc32cSse42(crc, data);
#endif
  return Crc32cPortable(crc, data);
}

}  // namespace handoff::storage
