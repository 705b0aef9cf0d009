// CURVE keys: a node's long-term key pair, in Z85 text as ZeroMQ and operators write them, and
// the secret key file that holds it (docs/security.md).
//
//   # handoff node secret key (CURVE, Z85). Keep it private: mode 0600.
//   # public key: <40 characters>
//   <40 characters: the secret key>
//
// Lines that are empty or start with '#' are comments; the one other line is the secret key
// (the public key is derived from it, the comment is for people). A file that group or others
// may read, or that is not a regular file, is refused. The secret key is never logged.
//
// Thread safety: pure functions (the file functions touch the file system).

#ifndef HANDOFF_NET_CURVE_KEYS_H_
#define HANDOFF_NET_CURVE_KEYS_H_

#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff::net {

// Z85 text of a 32-byte key.
inline constexpr size_t kCurveKeyTextLength = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// True if this libzmq was built with CURVE.
bool CurveAvailable();

// OK, or InvalidArgument saying what a key looks like (40 characters of Z85).
Status ValidateCurveKey(std::string_view key);

// A new random key pair.
Result<CurveKeyPair> GenerateCurveKeyPair();

// The key pair of a Z85 secret key.
Result<CurveKeyPair> KeyPairFromSecret(std::string_view secret_key);

// Reads a secret key file. NotFound if it does not exist; InvalidArgument if others may read
// it or it does not hold one well-formed key.
Result<CurveKeyPair> ReadSecretKeyFile(const std::string& path);

// Writes `pair` to a new file at `path` with mode 0600 and syncs it. AlreadyExists if a file is
// there: a key is never overwritten.
Status WriteSecretKeyFile(const std::string& path, const CurveKeyPair& pair);

// Reads the key file at `path`, or creates it with a new key pair when there is none (its
// directory too, mode 0700). Two processes that race to create it end with the same key.
Result<CurveKeyPair> LoadOrCreateSecretKeyFile(const std::string& path);

}  // namespace handoff::net

#endif  // HANDOFF_NET_CURVE_KEYS_H_
