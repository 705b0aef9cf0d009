// ContentHash: a 32-byte BLAKE2b digest (libsodium) over several byte strings, each length-
// prefixed so that ("ab","c") and ("a","bc") differ. Used to tell "the same request again" from
// "a different request under the same idempotency key". Thread safety: pure function.

#ifndef HANDOFF_BASE_HASH_H_
#define HANDOFF_BASE_HASH_H_

#include <initializer_list>
#include <string>
#include <string_view>

namespace handoff {

std::string ContentHash(std::initializer_list<std::string_view> parts);

}  // namespace handoff

#endif  // HANDOFF_BASE_HASH_H_
