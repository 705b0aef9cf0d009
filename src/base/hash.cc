#include "base/hash.h"

#include <sodium.h>

#include <cstdint>

namespace handoff {

std::string ContentHash(std::initializer_list<std::string_view> parts) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  for (std::string_view part : parts) {
    uint8_t length[8];
    uint64_t n = part.size();
    for (int i = 7; i >= 0; --i, n >>= 8) length[i] = static_cast<uint8_t>(n);
    crypto_generichash_update(&state, length, sizeof(length));
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  }
  std::string digest(crypto_generichash_BYTES, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(digest.data()), digest.size());
  return digest;
}

}  // namespace handoff
