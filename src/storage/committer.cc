#include "storage/committer.h"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>

namespace handoff::storage {
namespace {

int64_t Micros(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

constexpr std::chrono::seconds kRetryAfter(1);

}  // namespace

Committer::Committer(Store& store, std::function<void()> on_event,
                     std::chrono::microseconds busy_poll, std::chrono::milliseconds idle_commit)
    : store_(store),
      env_(store.env()),
      log_(store.log()),
      on_event_(std::move(on_event)),
      busy_poll_(busy_poll),
      idle_commit_(idle_commit),
      next_seq_(store.next_log_seq()),
      thread_([this] { Loop(); }) {}

Committer::~Committer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Committer::Start(const WriteSet* writes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = writes;
    result_.reset();
  }
  busy_ = true;
  cv_.notify_all();
}

Committer::Report Committer::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  return TakeLocked();
}

bool Committer::TakeIfCommitted() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!result_ || !result_->ok()) return false;
  result_.reset();
  busy_ = false;
  last_apply_us_ = apply_us_;
  last_commit_us_ = commit_us_;
  last_log_bytes_ = log_bytes_;
  return true;
}

Committer::Report Committer::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  if (busy_) cv_.wait(lock, [&] { return result_.has_value(); });
  return TakeLocked();
}

Committer::Report Committer::Drain() {
  Report report = Wait();
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !draining_; });
  report.applied += TakeLocked().applied;
  return report;
}

uint64_t Committer::lmdb_commits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lmdb_commits_;
}

Committer::Report Committer::TakeLocked() {
  Report report;
  if (result_) {
    report.durable = std::move(result_);
    result_.reset();
    busy_ = false;
    last_apply_us_ = apply_us_;
    last_commit_us_ = commit_us_;
    last_log_bytes_ = log_bytes_;
  }
  report.applied = applied_;
  applied_ = 0;
  report.store = fault_;
  return report;
}

void Committer::Loop() {
  // Named so that top -H, perf and handoff-bench can tell it from the node's loop.
  ::pthread_setname_np(::pthread_self(), "hoff-committer");
  std::unique_lock<std::mutex> lock(mu_);
  // Hands what the thread counted to the owner and wakes it.
  auto publish = [&] {
    applied_ += applied_now_;
    lmdb_commits_ += commits_now_;
    applied_now_ = 0;
    commits_now_ = 0;
    fault_ = Fault();
    cv_.notify_all();
    if (on_event_) {
      lock.unlock();
      on_event_();
      lock.lock();
    }
  };
  auto next_due = [&] { return commit_error_.ok() ? held_since_ + idle_commit_ : retry_at_; };
  auto due = [&](Clock::time_point now) {
    if (held_.empty()) return false;
    if (draining_ || stop_) return true;
    if (!commit_error_.ok()) return now >= retry_at_;
    return held_.size() >= kMaxHeld || held_bytes_ >= kMaxHeldBytes ||
           (held_.size() >= kFewHeld && held_bytes_ >= kEnoughHeldBytes) || now >= next_due();
  };
  while (true) {
    if (job_ != nullptr) {
      const WriteSet* job = job_;
      lock.unlock();
      last_batch_bytes_ = job->bytes();
      apply_us_now_ = log_us_now_ = 0;
      log_bytes_now_ = 0;
      Status s = Process(job);
      // A full map fails the batch, not the store: smaller writes (and purges) still go in.
      batch_error_ = s.IsResourceExhausted() ? Status::OK() : s;
      lock.lock();
      job_ = nullptr;
      result_ = std::move(s);
      apply_us_ = apply_us_now_;
      commit_us_ = log_us_now_;
      log_bytes_ = log_bytes_now_;
      publish();
      continue;
    }
    if (due(Clock::now())) {
      const bool finishing = draining_ || stop_;
      lock.unlock();
      Status s = CommitHeld();
      lock.lock();
      publish();
      if (finishing) {
        if (!s.ok()) spdlog::error("batches stay in the write-ahead log: {}", s.ToString());
        draining_ = false;
        cv_.notify_all();
        if (stop_) return;
      }
      continue;
    }
    if (draining_) {  // nothing held
      draining_ = false;
      cv_.notify_all();
      continue;
    }
    if (stop_) return;
    auto woken = [&] { return stop_ || job_ != nullptr || draining_; };
    if (busy_poll_.count() > 0) {
      // Look for the next batch a while before sleeping (the constructor and kBusyBatchBytes
      // say why).
      const auto spin =
          last_batch_bytes_ >= kBusyBatchBytes ? kBusySpinFactor * busy_poll_ : busy_poll_;
      const Clock::time_point until = Clock::now() + spin;
      do {
        lock.unlock();
        ::sched_yield();
        lock.lock();
      } while (!woken() && Clock::now() < until);
      if (woken()) continue;
    }
    if (held_.empty()) {
      cv_.wait(lock, woken);
    } else {
      cv_.wait_until(lock, next_due(), woken);
    }
  }
}

Status Committer::Fault() const {
  if (!commit_error_.ok()) return commit_error_;
  if (!flush_error_.ok()) return flush_error_;
  return batch_error_;
}

Status Committer::Process(const WriteSet* writes) {
  if (!flush_error_.ok()) {
    // A batch committed on its own could not be flushed: nothing more until a flush works.
    if (Status s = env_.Sync(); !s.ok()) {
      return Status(s.code(), "the data file cannot be flushed (" + s.message() +
                                  "); new writes are refused until it can");
    }
    spdlog::info("the data file is flushed again");
    flush_error_ = Status::OK();
  }
  if (!commit_error_.ok()) {
    // Batches already durable could not be put into LMDB (a full disk): try them again
    // before taking more.
    Status s = CommitHeld();
    if (!s.ok()) {
      return Status(s.code(), "the data file cannot be written (" + s.message() +
                                  "); new writes are refused until it can");
    }
  }
  if (held_.size() >= kMaxHeld) HANDOFF_RETURN_IF_ERROR(CommitHeld());
  if (log_ == nullptr) return ApplyDirect(writes);
  record_.clear();
  writes->Encode(&record_);
  if (!log_->FitsEver(record_.size())) return ApplyDirect(writes);
  if (!log_->Fits(record_.size())) {
    // Every record in the log must be in LMDB, durably, before the log starts over.
    HANDOFF_RETURN_IF_ERROR(CommitHeld());
    HANDOFF_RETURN_IF_ERROR(env_.Sync());
    log_->Restart();
  }
  HANDOFF_RETURN_IF_ERROR(EnsureTxn());
  // Applied first, so that a batch LMDB cannot take (a full map) fails before it is logged.
  const Clock::time_point start = Clock::now();
  Status s = writes->ApplyTo(*txn_);
  const Clock::time_point applied = Clock::now();
  if (s.ok()) {
    s = log_->Append(next_seq_, record_);
    if (log_->withdraw_failed()) {
      // The record may or may not be read back at the next open: this batch's outcome is
      // unknown, so no answer may go out. Stopping is the honest course; the next start
      // replays whatever the log holds, and clients ask again.
      spdlog::critical(
          "the write-ahead log {} failed ({}) and the partial record could not be withdrawn; "
          "stopping so that no outcome is reported that a restart could contradict. Check the "
          "disk, then start handoffd again",
          log_->path(), s.ToString());
      spdlog::shutdown();
      std::abort();
    }
  }
  apply_us_now_ = Micros(applied - start);
  log_us_now_ = Micros(Clock::now() - applied);
  if (!s.ok()) {
    // The batch fails alone: the ones held before it are durable and must reach LMDB (a
    // failed rebuild leaves that to CommitHeld's retries).
    (void)Rebuild();
    return s;
  }
  ++next_seq_;
  log_bytes_now_ = record_.size();
  held_.push_back(writes);
  held_bytes_ += writes->bytes();
  held_since_ = Clock::now();
  return Status::OK();
}

Status Committer::ApplyDirect(const WriteSet* writes) {
  HANDOFF_RETURN_IF_ERROR(EnsureTxn());
  const Clock::time_point start = Clock::now();
  Status s = writes->ApplyTo(*txn_);
  const Clock::time_point applied = Clock::now();
  apply_us_now_ = Micros(applied - start);
  if (s.ok() && !held_.empty()) s = store_.PutLogSeq(*txn_, next_seq_ - 1);
  if (s.ok()) {
    s = txn_->Commit();
    txn_.reset();
  }
  if (!s.ok()) {
    // The batch fails alone: the ones held before it are durable and must reach LMDB (a
    // failed rebuild leaves that to CommitHeld's retries).
    (void)Rebuild();
    return s;
  }
  ++commits_now_;
  applied_now_ += held_.size() + 1;
  held_.clear();
  held_bytes_ = 0;
  // Durable only once the meta page is: this batch is in no log.
  s = env_.Sync();
  log_us_now_ = Micros(Clock::now() - applied);
  if (!s.ok()) {
    // The batch is in LMDB and every reader sees it: it took effect, and reporting it failed
    // would be false (sent again, it would be done twice). What is not known is whether it
    // would survive a power cut, so nothing more is taken until a flush succeeds.
    spdlog::error(
        "a batch was committed to the data file but flushing it failed ({}): it is in effect "
        "and survives a crash of handoffd, but a power cut before the next successful flush "
        "may lose it; new writes are refused until a flush succeeds",
        s.ToString());
    flush_error_ = s;
  }
  return Status::OK();
}

Status Committer::EnsureTxn() {
  if (txn_) return Status::OK();
  if (!held_.empty()) return Rebuild();
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(env_));
  txn_.emplace(std::move(txn));
  return Status::OK();
}

Status Committer::CommitHeld() {
  if (held_.empty()) return Status::OK();
  Status s = txn_ ? Status::OK() : Rebuild();
  if (s.ok()) s = store_.PutLogSeq(*txn_, next_seq_ - 1);
  if (s.ok()) s = txn_->Commit();
  txn_.reset();
  if (!s.ok()) {
    if (commit_error_.ok()) {
      spdlog::error(
          "{} durable batch(es) could not be written to the data file; they stay in "
          "the write-ahead log and are tried again every second: {}",
          held_.size(), s.ToString());
    }
    commit_error_ = s;
    retry_at_ = Clock::now() + kRetryAfter;
    return s;
  }
  if (!commit_error_.ok()) spdlog::info("the data file is written again");
  commit_error_ = Status::OK();
  batch_error_ = Status::OK();
  ++commits_now_;
  applied_now_ += held_.size();
  held_.clear();
  held_bytes_ = 0;
  return Status::OK();
}

Status Committer::Rebuild() {
  txn_.reset();
  if (held_.empty()) return Status::OK();
  Status s = [&]() -> Status {
    HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(env_));
    txn_.emplace(std::move(txn));
    for (const WriteSet* writes : held_) HANDOFF_RETURN_IF_ERROR(writes->ApplyTo(*txn_));
    return Status::OK();
  }();
  if (!s.ok()) {
    txn_.reset();
    commit_error_ = s;
    retry_at_ = Clock::now() + kRetryAfter;
  }
  return s;
}

}  // namespace handoff::storage
