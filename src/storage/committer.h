// Committer: makes write sets durable on a thread of its own.
//
// Start hands it a write set; it applies the set to LMDB in one write transaction and commits
// it (with fsync unless the environment has sync off), then calls `on_done` from its thread
// (handoffd's loop wakes up on it). Meanwhile the loop thread goes on reading through the set
// (Txn::BeginLayered) and collecting the next one, so the fsync of one batch overlaps the work
// of the next: group commit without stopping the loop. One commit runs at a time.
//
// Thread safety: Start, busy, TakeResult and Wait from one thread (the owner's); the write set
// must stay unchanged and alive until its result is taken.

#ifndef HANDOFF_STORAGE_COMMITTER_H_
#define HANDOFF_STORAGE_COMMITTER_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "handoff/status.h"
#include "storage/lmdb.h"
#include "storage/write_set.h"

namespace handoff::storage {

class Committer {
 public:
  // `env` must outlive the Committer. `on_done` runs on the committer thread after each commit.
  Committer(Env& env, std::function<void()> on_done);
  // Waits for a running commit, then stops the thread.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Starts committing `writes`. Requires !busy().
  void Start(const WriteSet* writes);
  // True from Start until its result is taken.
  bool busy() const { return busy_; }
  // The result of the commit Start began, once it has finished; nullopt while it runs (or when
  // none was started).
  std::optional<Status> TakeResult();
  // Blocks until the running commit finishes and returns its result (OK when none runs).
  Status Wait();
  // How long the commit whose result was taken last took, in microseconds: applying the
  // write set, and LMDB's commit (its page writes and syncs).
  int64_t last_apply_us() const { return last_apply_us_; }
  int64_t last_commit_us() const { return last_commit_us_; }

 private:
  void Loop();
  // Takes the finished commit's result and timings; requires mu_ held and result_ set.
  Status TakeLocked();

  Env& env_;
  std::function<void()> on_done_;
  bool busy_ = false;  // owner's view
  std::mutex mu_;
  std::condition_variable cv_;
  const WriteSet* job_ = nullptr;  // guarded by mu_
  std::optional<Status> result_;   // guarded by mu_
  int64_t apply_us_ = 0;           // guarded by mu_: of the finished commit
  int64_t commit_us_ = 0;          // guarded by mu_
  int64_t last_apply_us_ = 0;      // owner's copies, set when a result is taken
  int64_t last_commit_us_ = 0;
  bool stop_ = false;              // guarded by mu_
  std::thread thread_;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_COMMITTER_H_
