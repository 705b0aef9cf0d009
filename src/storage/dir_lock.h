// DirLock: one handoffd per data directory.
//
// LMDB itself lets several processes open one environment, but two daemons on one data
// directory would both deliver its intents. DirLock holds an exclusive flock on <dir>/LOCK for
// its lifetime; the kernel drops it when the process dies, so a SIGKILLed daemon never leaves a
// stale lock behind. The file records the holder's pid for the error message.
//
// Thread safety: not shared; one per daemon.

#ifndef HANDOFF_STORAGE_DIR_LOCK_H_
#define HANDOFF_STORAGE_DIR_LOCK_H_

#include <memory>
#include <string>

#include "handoff/status.h"

namespace handoff::storage {

class DirLock {
 public:
  // Unavailable if another live process holds the lock.
  static Result<std::unique_ptr<DirLock>> Acquire(const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_DIR_LOCK_H_
