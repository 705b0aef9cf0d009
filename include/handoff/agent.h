// handoff::Agent: the receive loop of an agent that works on intents sent to its address.
//
//   handoff::AgentOptions options;
//   options.address = "agent://acme/prod/processor";
//   auto agent = handoff::Agent::Connect(options);
//   (*agent)->Run([](handoff::Task& task) {
//     int step = task.checkpoint().is_null() ? 0 : task.checkpoint()["step"].get<int>();
//     for (; step < 10; ++step) {
//       ... work ...
//       task.Checkpoint({{"step", step + 1}});     // durable before it returns
//     }
//     return handoff::Outcome::Complete({{"ok", true}});
//   });
//
// Run() receives one intent at a time, acknowledges it, calls the handler, and reports the
// outcome. While the handler runs, a background thread sends heartbeats that keep the lease
// alive; if the intent is canceled or times out meanwhile, task.canceled() turns true. A delivery
// carries the latest checkpoint and the attempt number, so a restarted agent resumes where the last
// one stopped. Run() keeps going through daemon restarts: it re-registers and retries until the
// daemon answers.
//
// Thread safety: Run() on one thread; Stop() from any thread.

#ifndef HANDOFF_AGENT_H_
#define HANDOFF_AGENT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "handoff/client.h"
#include "handoff/intent.h"
#include "handoff/status.h"

namespace handoff {

struct AgentOptions {
  // The address this agent receives for. Required.
  std::string address;
  // How to reach the daemon.
  ClientOptions client;
  // Intents held at once (delivered but not finished). More than 1 prefetches. Default: 1.
  uint32_t credit = 1;
  // Between heartbeats while a handler runs. 0: a third of the intent's lease. Default: 0.
  std::chrono::milliseconds heartbeat_interval{0};
  // While idle, registration is repeated this often (it is how a restarted daemon learns of
  // this agent again). Default: 1 s.
  std::chrono::milliseconds refresh_interval{1'000};
};

class Agent;

// One delivered intent, handed to the handler.
class Task {
 public:
  const Intent& intent() const { return intent_; }
  const std::string& intent_id() const { return intent_.intent_id; }
  const std::string& intent_type() const { return intent_.intent_type; }
  const Json& payload() const { return intent_.payload; }
  // The latest checkpoint saved by any earlier attempt; null if none.
  const Json& checkpoint() const { return intent_.checkpoint; }
  uint32_t attempt() const { return intent_.delivery_attempt; }

  // The latest human decision when this delivery follows one (RequestApproval); else nullopt.
  const std::optional<Approval>& approval() const { return intent_.approval; }
  // Asks a human and gives the intent up until they decide (WAITING, HUMAN): return from the
  // handler after this succeeds; whatever it returns is not reported. The checkpoint is kept,
  // and the intent comes back, decision attached, as a new delivery.
  Status RequestApproval(std::string_view question, const std::vector<std::string>& outcomes = {});
  bool suspended() const { return suspended_; }

  // Saves resume state; returns once it is durable. Conflict if the lease was lost,
  // Cancelled if the intent was canceled. A checkpoint the daemon could not store (NotStored:
  // a full disk) is tried again, with the lease held, until it is stored, the lease is lost,
  // the intent is canceled or the agent is stopped.
  Status Checkpoint(const Json& state);
  // True once the daemon reported the intent canceled or past its deadline; the handler should
  // stop soon (its result would be refused).
  bool canceled() const { return canceled_.load(); }
  // True once the daemon reported that this attempt no longer holds the lease.
  bool lease_lost() const { return lease_lost_.load(); }

 private:
  friend class Agent;
  Task(Intent intent, Client& client, const std::atomic<bool>& stop)
      : intent_(std::move(intent)), client_(client), stop_(stop) {}
  Intent intent_;
  Client& client_;
  const std::atomic<bool>& stop_;  // the agent's
  std::atomic<bool> canceled_{false};
  std::atomic<bool> lease_lost_{false};
  bool suspended_ = false;
};

// What the handler decided.
struct Outcome {
  enum class Kind {
    kComplete,  // done: `result` is the intent's result
    kFail,      // failed: `error` says why
    kAbandon,   // report nothing: the lease runs out and the intent is delivered again
  };
  Kind kind = Kind::kComplete;
  Json result;
  ErrorInfo error;

  static Outcome Complete(Json result = nullptr) {
    return Outcome{Kind::kComplete, std::move(result), {}};
  }
  static Outcome Fail(std::string code, std::string message, bool retryable = false) {
    return Outcome{Kind::kFail, nullptr, ErrorInfo{std::move(code), std::move(message), retryable}};
  }
  static Outcome Abandon() { return Outcome{Kind::kAbandon, nullptr, {}}; }
};

using Handler = std::function<Outcome(Task&)>;

class Agent {
 public:
  // InvalidArgument for a malformed address; Unavailable if the daemon is not running.
  static Result<std::unique_ptr<Agent>> Connect(const AgentOptions& options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Serves intents until Stop(). A handler that throws fails the intent as retryable.
  Status Run(const Handler& handler);
  void Stop() { stop_.store(true); }

 private:
  class Heartbeats;
  Agent(AgentOptions options, std::unique_ptr<Client> client, std::unique_ptr<Connection> inbox,
        std::unique_ptr<Heartbeats> heartbeats);
  Status Register();
  void Handle(Intent intent, const Handler& handler);
  // Sends a report (complete/fail) again while the daemon is away or could not store it (a
  // full disk), until it is stored, the lease is lost, or the agent is stopped.
  void Report(Task& task, const std::function<Status()>& report);

  AgentOptions options_;
  std::unique_ptr<Client> client_;     // requests from the loop and the handler
  std::unique_ptr<Connection> inbox_;  // registration and pushed deliveries
  std::unique_ptr<Heartbeats> heartbeats_;
  std::atomic<bool> stop_{false};
};

}  // namespace handoff

#endif  // HANDOFF_AGENT_H_
