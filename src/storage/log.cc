#include "storage/log.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "storage/crc32c.h"

namespace handoff::storage {
namespace {

constexpr char kMagic[4] = {'H', 'O', 'w', 'l'};
// Version 2 checks records with CRC-32C; version 1 (still read, so a log an earlier release
// left is replayed) with SipHash-2-4, which cost a fifth of the Committer's instructions.
constexpr uint16_t kVersion = 2;
constexpr uint16_t kVersionSipHash = 1;
// Version 1's fixed key: the checksum guards against torn and stale records, not against an
// attacker (who could write the file anyway).
constexpr unsigned char kSipHashKey[crypto_shorthash_KEYBYTES] = {
    'h', 'a', 'n', 'd', 'o', 'f', 'f', '-', 'w', 'a', 'l', '-', 'v', '1', '.', '0'};

Status Errno(std::string_view what, const std::string& path) {
  return Status::IOError(std::string(what) + " " + path + ": " + std::strerror(errno));
}

void PutLe(unsigned char* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i, v >>= 8) out[i] = static_cast<unsigned char>(v);
}

uint64_t GetLe(const unsigned char* in, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | in[i];
  return v;
}

// The checksum of a record whose first 24 header bytes are `header`, by its version.
uint64_t Checksum(uint16_t version, const unsigned char* header, std::string_view payload) {
  if (version == kVersionSipHash) {
    unsigned char input[24 + crypto_shorthash_BYTES];
    std::memcpy(input, header, 24);
    crypto_shorthash(input + 24, reinterpret_cast<const unsigned char*>(payload.data()),
                     payload.size(), kSipHashKey);
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, input, sizeof(input), kSipHashKey);
    return GetLe(out, 8);
  }
  const uint32_t crc = Crc32c(0, std::string_view(reinterpret_cast<const char*>(header), 24));
  return Crc32c(crc, payload);
}

// Moves `size` bytes at `offset` with `io` (pread or pwrite), resuming after short transfers
// and signals; false on an error or the end of the file.
template <typename Byte, typename Io>
bool TransferAll(int fd, Byte* data, size_t size, off_t offset, Io io) {
  while (size > 0) {
    ssize_t n = io(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

bool PwriteAll(int fd, const char* data, size_t size, off_t offset) {
  return TransferAll(fd, data, size, offset, ::pwrite);
}

bool PreadAll(int fd, void* data, size_t size, off_t offset) {
  return TransferAll(fd, static_cast<char*>(data), size, offset, ::pread);
}

}  // namespace

Result<std::unique_ptr<Log>> Log::Open(const std::string& path, uint64_t bytes, bool sync) {
  if (sodium_init() < 0) return Status::IOError("libsodium could not be initialised");
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open", path);
  std::unique_ptr<Log> log(new Log(fd, path, bytes, sync));
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("cannot stat", path);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size >= bytes) {
    log->bytes_ = size / kAlign * kAlign;  // a larger file from an earlier setting: use it all
    return log;
  }
  // Zeros up to the full size, written so that the blocks are allocated now, then flushed
  // with the file's new size (and its directory entry, for a new file).
  const std::string zeros(1 << 20, '\0');
  for (uint64_t at = size; at < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - at));
    if (!PwriteAll(fd, zeros.data(), n, static_cast<off_t>(at))) {
      return Errno("cannot preallocate", path);
    }
    at += n;
  }
  if (sync) {
    if (::fsync(fd) != 0) return Errno("cannot flush", path);
    const std::string dir = path.substr(0, path.find_last_of('/') + 1);
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return log;
}

Log::~Log() { ::close(fd_); }

Status Log::Scan(const std::function<Status(uint64_t seq, std::string_view payload)>& fn) const {
  std::string payload;
  uint64_t at = 0;
  uint64_t previous = 0;
  bool first = true;
  while (at + kHeaderBytes <= bytes_) {
    unsigned char header[kHeaderBytes];
    if (!PreadAll(fd_, header, sizeof(header), static_cast<off_t>(at))) {
      return Errno("cannot read", path_);
    }
    const auto version = static_cast<uint16_t>(GetLe(header + 4, 2));
    if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0 ||
        (version != kVersion && version != kVersionSipHash)) {
      break;
    }
    const uint64_t seq = GetLe(header + 8, 8);
    const uint64_t length = GetLe(header + 16, 8);
    if (length > bytes_ - at - kHeaderBytes || (!first && seq != previous + 1)) break;
    payload.resize(length);
    if (!PreadAll(fd_, payload.data(), length, static_cast<off_t>(at + kHeaderBytes))) {
      return Errno("cannot read", path_);
    }
    if (Checksum(version, header, payload) != GetLe(header + 24, 8)) break;
    HANDOFF_RETURN_IF_ERROR(fn(seq, payload));
    previous = seq;
    first = false;
    at += Span(length);
  }
  return Status::OK();
}

Status Log::Append(uint64_t seq, std::string_view payload) {
  if (!Fits(payload.size())) {
    return Status::InvalidArgument("a log record of " + std::to_string(payload.size()) +
                                   " bytes does not fit in what is left of " + path_);
  }
  unsigned char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  PutLe(header + 4, kVersion, 2);
  PutLe(header + 8, seq, 8);
  PutLe(header + 16, payload.size(), 8);
  PutLe(header + 24, Checksum(kVersion, header, payload), 8);
  std::array<iovec, 2> parts = {iovec{header, sizeof(header)},
                                iovec{const_cast<char*>(payload.data()), payload.size()}};
  const size_t total = sizeof(header) + payload.size();
  // Past this point something of the record may be in the file: a failure withdraws it.
  auto failed = [&](std::string_view what) {
    Status s = Errno(what, path_);
    if (!Withdraw()) withdraw_failed_ = true;
    return s;
  };
  ssize_t n;
  do {
    n = ::pwritev(fd_, parts.data(), static_cast<int>(parts.size()), static_cast<off_t>(offset_));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return failed("cannot write");
  if (static_cast<size_t>(n) < total) {
    // A short write (rare: a signal mid-way, a full device): finish it piece by piece.
    std::string record(reinterpret_cast<const char*>(header), sizeof(header));
    record.append(payload);
    if (!PwriteAll(fd_, record.data() + n, total - static_cast<size_t>(n),
                   static_cast<off_t>(offset_) + n)) {
      return failed("cannot write");
    }
  }
  if (sync_ && ::fdatasync(fd_) != 0) return failed("cannot flush");
  offset_ += Span(payload.size());
  return Status::OK();
}

bool Log::Withdraw() {
  // Scan stops at a record without its magic: zeroing the header is enough.
  const char zeros[kHeaderBytes] = {};
  if (!PwriteAll(fd_, zeros, sizeof(zeros), static_cast<off_t>(offset_))) return false;
  return !sync_ || ::fdatasync(fd_) == 0;
}

}  // namespace handoff::storage
