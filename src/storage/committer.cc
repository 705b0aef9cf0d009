#include "storage/committer.h"

#include <chrono>

namespace handoff::storage {

Committer::Committer(Env& env, std::function<void()> on_done)
    : env_(env), on_done_(std::move(on_done)), thread_([this] { Loop(); }) {}

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

std::optional<Status> Committer::TakeResult() {
  if (!busy_) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  if (!result_) return std::nullopt;
  return TakeLocked();
}

Status Committer::Wait() {
  if (!busy_) return Status::OK();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return result_.has_value(); });
  return TakeLocked();
}

Status Committer::TakeLocked() {
  busy_ = false;
  last_apply_us_ = apply_us_;
  last_commit_us_ = commit_us_;
  Status out = std::move(*result_);
  result_.reset();
  return out;
}

void Committer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || job_ != nullptr; });
    if (job_ == nullptr) return;  // stopping with nothing left to commit
    const WriteSet* writes = job_;
    lock.unlock();
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    Clock::time_point applied = start;
    Status s = [&]() -> Status {
      HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(env_));
      HANDOFF_RETURN_IF_ERROR(writes->ApplyTo(txn));
      applied = Clock::now();
      return txn.Commit();
    }();
    const Clock::time_point end = Clock::now();
    auto us = [](Clock::duration d) {
      return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    };
    lock.lock();
    job_ = nullptr;
    apply_us_ = us(applied - start);
    commit_us_ = us(end - applied);
    result_ = std::move(s);
    cv_.notify_all();
    if (on_done_) {
      lock.unlock();
      on_done_();
      lock.lock();
    }
  }
}

}  // namespace handoff::storage
