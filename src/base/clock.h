// Clock: the one source of time for node logic, injected so tests can drive it by hand.
//
// Node logic never reads the system clock directly: it takes a Clock& and works in Unix
// milliseconds. Durable timers (leases, deadlines, retry backoff) use wall-clock time because
// they must survive a restart, which a monotonic clock does not; docs/design.md explains how
// leases are re-armed after a restart so a clock jump cannot expire live work en masse.
//
// Thread safety: SystemClock is safe from any thread; ManualClock is safe too (atomic).

#ifndef HANDOFF_BASE_CLOCK_H_
#define HANDOFF_BASE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace handoff {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  // A process-wide instance; never destroyed.
  static SystemClock& Instance();
};

// Time moves only when the test says so.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  void Set(int64_t ms) { now_.store(ms); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace handoff

#endif  // HANDOFF_BASE_CLOCK_H_
