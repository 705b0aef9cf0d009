// Committer: makes write sets durable on a thread of its own, one flush per batch.
//
// Start hands it a write set (a batch: the turns the loop gathered). The thread applies the
// set to an LMDB write transaction it keeps open (which is where a full map shows, before
// anything is promised), appends the set to the write-ahead log and flushes the log: the
// batch is durable, and the loop may send what it held. The transaction goes on collecting
// later batches and is committed (its data pages flushed, its meta page written without a
// flush of its own) once it holds enough batches or bytes (below), or when no batch came
// for kIdleCommitMs, or the log needs restarting; it records the last log seq it carries in
// meta, so that opening the store replays only what LMDB lacks (store.h). Until a batch is in
// LMDB its write set is one of the loop's layers (Txn::BeginLayered), so the loop and every
// read see it; Take tells the loop how many it may drop.
//
// Without a log (or for a batch too big for it), a batch is committed to LMDB and synced on
// its own, meta page included: durable and applied at once.
//
// If applying or logging a batch fails, the batch fails as a whole and LMDB's transaction is
// rebuilt from the batches held before it, which stay durable; what was written of its log
// record is withdrawn, so a failed batch never comes back at replay (a record that cannot be
// withdrawn stops the daemon: whether it took effect would be unknown). If committing held
// batches fails (the disk is full), they stay in the log and in the loop's layers; the
// Committer tries again every second and refuses new batches with that error meanwhile. A
// batch committed to LMDB whose flush then failed has taken effect and is reported so; new
// batches are refused until a flush succeeds. Report::store says whether the store takes
// writes.
//
// Thread safety: Start, busy, Take, Wait and Drain from one thread (the owner's). A write set
// must stay unchanged and alive until Take has counted it applied (or its batch failed).

#ifndef HANDOFF_STORAGE_COMMITTER_H_
#define HANDOFF_STORAGE_COMMITTER_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "handoff/status.h"
#include "storage/lmdb.h"
#include "storage/store.h"
#include "storage/write_set.h"

namespace handoff::storage {

class Committer {
 public:
  // When the transaction is committed: once it holds kFewHeld batches that carry
  // kEnoughHeldBytes between them, or kMaxHeld batches whatever they carry, or kMaxHeldBytes
  // whatever their number. A commit flushes the data file, and while it runs no batch can be
  // made durable; below about 128 KiB its cost is mostly the flush's fixed part
  // (handoff-flush-bench). Small batches (a node at a few round trips in flight) are therefore
  // held longer, so that fewer of them wait behind a commit. A busy node's commits rewrite the
  // same pages (the queue's, the newest intents'): holding up to 4 MiB (some 30 batches at 256
  // in flight) writes them a quarter as often as 1 MiB did (docs/performance.md). Every held batch
  // is a layer the loop's reads look through, which is what bounds kMaxHeld.
  static constexpr size_t kFewHeld = 12;
  static constexpr uint64_t kEnoughHeldBytes = uint64_t{128} << 10;
  static constexpr size_t kMaxHeld = 48;
  static constexpr uint64_t kMaxHeldBytes = uint64_t{4} << 20;
  static_assert(kMaxHeld + 1 <= Txn::kMaxBelow, "the loop reads every held batch and one more");
  // With no new batch for this long, the held ones are committed. Long enough that a node
  // working at one round trip in flight does not flush LMDB between every two batches (its
  // flushes would queue with the log's, its own and a neighbour's on the same disk).
  static constexpr int kIdleCommitMs = 100;
  // After a batch of at least kBusyBatchBytes (a node with many requests in flight, whose next
  // batch is being gathered while this one was logged), the thread looks for the next one
  // kBusySpinFactor times as long as busy_poll before it sleeps: woken from sleep it started
  // a batch ~80 us after the loop handed it over (the median; docs/performance.md). After small
  // batches (a few round trips in flight, where two nodes on two cores need the CPU) it spins
  // busy_poll as before.
  static constexpr uint64_t kBusyBatchBytes = uint64_t{32} << 10;
  static constexpr int kBusySpinFactor = 4;

  // What happened since the last Take.
  struct Report {
    std::optional<Status> durable;  // the started batch's outcome, once it is known
    size_t applied = 0;             // durable batches now in LMDB, oldest first
    // OK while the store takes writes; else why not (the last failure, until a batch or a
    // retried commit succeeds).
    Status store;
  };

  // `store` must outlive the Committer. `on_event` runs on the committer thread after each
  // outcome and each commit (handoffd's loop wakes up on it). With nothing to do, the thread
  // looks for a new batch for up to `busy_poll` (yielding the core between looks) before it
  // sleeps: at a steady rate the next batch comes sooner than a sleeping thread wakes.
  // `idle_commit` replaces kIdleCommitMs (tests).
  Committer(Store& store, std::function<void()> on_event,
            std::chrono::microseconds busy_poll = std::chrono::microseconds(0),
            std::chrono::milliseconds idle_commit = std::chrono::milliseconds(kIdleCommitMs));
  // Finishes the running batch, commits what is held, then stops the thread.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Starts making `writes` durable. Requires !busy().
  void Start(const WriteSet* writes);
  // True from Start until its outcome is taken.
  bool busy() const { return busy_; }
  // What happened since the last call; never blocks.
  Report Take();
  // True, taking the outcome, when the started batch is known to be durable; false when it is
  // still running or failed (a failure is left for Take or Wait). Batches applied to LMDB
  // meanwhile are still reported by the next Take. Never blocks.
  bool TakeIfCommitted();
  // Blocks until the started batch's outcome is known (returns at once when none runs).
  Report Wait();
  // Blocks until every durable batch is in LMDB and synced (or that failed).
  Report Drain();
  // For the last batch whose outcome was taken, in microseconds: applying its writes to the
  // LMDB transaction, and appending it to the log with the flush.
  int64_t last_apply_us() const { return last_apply_us_; }
  int64_t last_commit_us() const { return last_commit_us_; }
  // For the same batch: the bytes of its write-ahead log record (0 when it was committed to
  // LMDB directly, without the log).
  uint64_t last_log_bytes() const { return last_log_bytes_; }
  // LMDB transactions committed (each holding one or more batches).
  uint64_t lmdb_commits() const;

 private:
  using Clock = std::chrono::steady_clock;
  void Loop();
  // On the thread: makes `writes` durable; returns its outcome.
  Status Process(const WriteSet* writes);
  Status ApplyDirect(const WriteSet* writes);
  Status EnsureTxn();
  // Commits the held batches to LMDB; on failure keeps them for Retry.
  Status CommitHeld();
  // Aborts the transaction and applies the held batches to a new one.
  Status Rebuild();
  Report TakeLocked();
  // Why the store takes no writes now (OK when it does).
  Status Fault() const;

  Store& store_;
  Env& env_;
  Log* log_;
  std::function<void()> on_event_;
  const std::chrono::microseconds busy_poll_;
  const std::chrono::milliseconds idle_commit_;
  bool busy_ = false;          // owner's view
  int64_t last_apply_us_ = 0;  // owner's copies
  int64_t last_commit_us_ = 0;
  uint64_t last_log_bytes_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  const WriteSet* job_ = nullptr;  // guarded by mu_
  std::optional<Status> result_;   // guarded by mu_
  size_t applied_ = 0;             // guarded by mu_: since the last Take
  bool draining_ = false;          // guarded by mu_
  bool stop_ = false;              // guarded by mu_
  int64_t apply_us_ = 0;           // guarded by mu_: of the batch whose outcome is in result_
  int64_t commit_us_ = 0;          // guarded by mu_
  uint64_t log_bytes_ = 0;         // guarded by mu_
  uint64_t lmdb_commits_ = 0;      // guarded by mu_
  Status fault_;                   // guarded by mu_: the thread's Fault() when it published

  // The thread's own.
  std::optional<Txn> txn_;            // holds the batches in held_
  std::deque<const WriteSet*> held_;  // durable, not yet committed to LMDB
  uint64_t held_bytes_ = 0;
  Clock::time_point held_since_;   // when the last batch was added to held_
  uint64_t next_seq_;              // of the next log record
  uint64_t last_batch_bytes_ = 0;  // of the last batch taken (kBusyBatchBytes)
  Status commit_error_;            // the last CommitHeld's, until one succeeds
  Status flush_error_;             // a direct commit's failed flush, until a flush succeeds
  Status batch_error_;             // the last batch's failure, until one succeeds
  Clock::time_point retry_at_;
  size_t applied_now_ = 0;    // counted by the thread, moved to applied_
  int64_t apply_us_now_ = 0;  // of the batch Process ran last
  int64_t log_us_now_ = 0;
  uint64_t log_bytes_now_ = 0;
  uint64_t commits_now_ = 0;
  std::string record_;  // the log record being written
  std::thread thread_;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_COMMITTER_H_
