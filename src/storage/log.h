// Log: the write-ahead log of a data directory (file `wal`), which makes a batch durable with
// one flush.
//
// An LMDB commit flushes twice (its data pages, then its meta page); a log append flushes
// once. The Committer appends each batch's write set to the log and flushes it, which is when
// the batch counts as stored; it applies batches to LMDB in transactions whose meta page is
// not flushed on its own, and records in LMDB (meta `log_seq`) the last batch each carried.
// On open, Store replays the records past that number. docs/storage.md has the whole story.
//
// The file is preallocated with zeros (written, not only reserved), so an append allocates
// no blocks and changes no size: its flush writes the record's pages and nothing else.
// Records start on 4 KiB boundaries, so a flush never rewrites a page an earlier record
// shares. A record:
//
//   offset  bytes  field
//   0       4      magic "HOwl"
//   4       2      version (2), little-endian
//   6       2      reserved (0)
//   8       8      seq, little-endian: one more than the record before it
//   16      8      payload length, little-endian
//   24      8      checksum, little-endian: CRC-32C of bytes 0-23 then the payload (version
//                  2); SipHash-2-4 of bytes 0-23 and of the payload's own SipHash (version
//                  1, written by earlier releases and still read)
//   32      ...    payload (a write set, WriteSet::Encode)
//
// Appends go one after another until a record does not fit in what is left; the Committer
// then makes LMDB durable up to the last record and restarts the log at offset 0. Reading
// stops at the first record that is torn, has a bad checksum, or does not carry the next
// seq, so what an earlier pass left behind is never read as new.
//
// Thread safety: one thread appends; Scan is for opening, before any append.

#ifndef HANDOFF_STORAGE_LOG_H_
#define HANDOFF_STORAGE_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff::storage {

class Log {
 public:
  static constexpr uint64_t kAlign = 4096;
  static constexpr uint64_t kHeaderBytes = 32;

  // Opens `path`, creating it (or extending it) to at least `bytes` of zeros. With `sync`,
  // each Append flushes (fdatasync) before it returns.
  static Result<std::unique_ptr<Log>> Open(const std::string& path, uint64_t bytes, bool sync);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Calls `fn` for each record from the start of the file, in order, while each is whole,
  // checks out and carries the seq after the previous one's. An error from `fn` stops the
  // scan and is returned; a record that does not check out ends it quietly.
  Status Scan(const std::function<Status(uint64_t seq, std::string_view payload)>& fn) const;

  // Whether a record of `payload` bytes fits in the file at all, and in what is left of it.
  bool FitsEver(uint64_t payload) const { return Span(payload) <= bytes_; }
  bool Fits(uint64_t payload) const { return offset_ + Span(payload) <= bytes_; }
  // Writes record `seq` after the previous one and, with sync, flushes it. Requires Fits.
  // On an error nothing of the record counts: what was written of it is withdrawn (its header
  // zeroed and flushed), so a later Scan cannot find it. If even that fails,
  // withdraw_failed() turns true: the record may come back at the next open, so whether it
  // took effect is unknown, and the log must not be used again.
  Status Append(uint64_t seq, std::string_view payload);
  bool withdraw_failed() const { return withdraw_failed_; }
  // The next Append writes at the start of the file. Only once every record in it is in
  // LMDB, durably: Appends overwrite them.
  void Restart() { offset_ = 0; }

  uint64_t bytes() const { return bytes_; }
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }

 private:
  Log(int fd, std::string path, uint64_t bytes, bool sync)
      : fd_(fd), path_(std::move(path)), bytes_(bytes), sync_(sync) {}
  // Zeroes the header at offset_ and flushes it; false if that fails.
  bool Withdraw();
  // Bytes a record of `payload` bytes takes, padding included.
  static uint64_t Span(uint64_t payload) {
    return (kHeaderBytes + payload + kAlign - 1) / kAlign * kAlign;
  }

  int fd_;
  std::string path_;
  uint64_t bytes_;
  bool sync_;
  uint64_t offset_ = 0;
  bool withdraw_failed_ = false;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_LOG_H_
