#include "handoff/agent.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/names.h"
#include "client/connection.h"
#include "client/convert.h"

namespace handoff {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMinHeartbeat{50};
constexpr milliseconds kReportRetryPause{200};

// Notes in the task's flags what the daemon said about it.
void Observe(const Status& s, std::atomic<bool>& canceled, std::atomic<bool>& lease_lost) {
  if (s.IsCancelled() || s.IsTimedOut()) canceled.store(true);
  if (s.IsConflict()) lease_lost.store(true);
}

// Worth sending again: the daemon is away (restarting?), or could not store the request
// (a full disk) and says nothing of it took effect.
bool Retryable(const Status& s) { return s.IsUnavailable() || s.IsNotStored(); }

}  // namespace

Status Task::RequestApproval(std::string_view question, const std::vector<std::string>& outcomes) {
  Status s =
      client_.RequestApproval(intent_.intent_id, intent_.delivery_attempt, question, outcomes);
  Observe(s, canceled_, lease_lost_);
  if (s.ok()) suspended_ = true;
  return s;
}

Status Task::Checkpoint(const Json& state) {
  // The heartbeats hold the lease meanwhile: a checkpoint the disk could not take is tried
  // again until it is stored, or the lease is lost, or the intent canceled.
  bool warned = false;
  while (true) {
    Status s = client_.Checkpoint(intent_.intent_id, intent_.delivery_attempt, state);
    Observe(s, canceled_, lease_lost_);
    // Only not_stored: the daemon answers, and the heartbeats hold the lease. A daemon that
    // is away is the handler's to judge.
    if (!s.IsNotStored() || canceled_.load() || lease_lost_.load() || stop_.load()) return s;
    if (!warned) {
      spdlog::warn("checkpoint of intent {}: {}; retrying", intent_.intent_id, s.ToString());
      warned = true;
    }
    std::this_thread::sleep_for(kReportRetryPause);
  }
}

// Sends heartbeats for the running task from a thread (and connection) of its own, so a
// handler that blocks for minutes keeps its lease; between them it watches the intent with a
// parked `wait` (record only), so a cancel reaches the task at once rather than at the next
// heartbeat.
class Agent::Heartbeats {
 public:
  explicit Heartbeats(std::unique_ptr<Client> client)
      : client_(std::move(client)), thread_([this] { Loop(); }) {}

  ~Heartbeats() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Begin(Task* task, milliseconds interval) {
    std::lock_guard<std::mutex> lock(mu_);
    task_ = task;
    interval_ = std::max(interval, kMinHeartbeat);
    cv_.notify_all();
  }

  // Returns once no heartbeat or watch for the task is in flight, so the task may be
  // destroyed. A watch ends at once when the intent ends (completed, failed for good), else
  // within kWatchChunk.
  void End() {
    std::unique_lock<std::mutex> lock(mu_);
    task_ = nullptr;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !busy_; });
  }

 private:
  // Runs `call` with the lock released, marked busy so End() waits for it.
  template <typename F>
  auto Unlocked(std::unique_lock<std::mutex>& lock, F call) {
    busy_ = true;
    lock.unlock();
    auto result = call();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
    return result;
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      if (task_ == nullptr) {
        cv_.wait(lock);
        continue;
      }
      Task* task = task_;
      const auto beat_at = std::chrono::steady_clock::now() + interval_;
      // Most handlers finish in moments: only one still running after kWatchDelay is watched.
      if (cv_.wait_for(lock, std::min(interval_, kWatchDelay),
                       [&] { return quit_ || task_ != task; })) {
        continue;
      }
      bool ended = false;  // the intent ended: nothing more to watch or keep alive
      while (!quit_ && task_ == task && !ended) {
        const auto left =
            std::chrono::duration_cast<milliseconds>(beat_at - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        auto watched = Unlocked(lock, [&] {
          return client_->WatchStatus(task->intent_id(), std::min(left, kWatchChunk));
        });
        if (watched.ok()) {
          if (!IsTerminal(*watched)) continue;  // still live when the chunk ran out
          if (*watched == IntentStatus::kCanceled || *watched == IntentStatus::kTimedOut) {
            task->canceled_.store(true);
          }
          ended = true;
        } else if (cv_.wait_for(lock, std::min(left, kWatchRetryPause),
                                [&] { return quit_ || task_ != task; })) {
          break;  // the task is over, or the agent stops
        }
      }
      if (quit_ || task_ != task) continue;
      if (ended) {
        cv_.wait(lock, [&] { return quit_ || task_ != task; });
        continue;
      }
      Status s =
          Unlocked(lock, [&] { return client_->Heartbeat(task->intent_id(), task->attempt()); });
      if (!s.ok()) {
        spdlog::debug("heartbeat for intent {}: {}", task->intent_id(), s.ToString());
        Observe(s, task->canceled_, task->lease_lost_);
      }
    }
  }

  // How long one parked watch lasts: End() waits at most this for an intent that stays live
  // (a lease lost, a retryable failure).
  static constexpr milliseconds kWatchChunk{500};
  static constexpr milliseconds kWatchRetryPause{200};
  static constexpr milliseconds kWatchDelay{200};

  std::unique_ptr<Client> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  Task* task_ = nullptr;
  milliseconds interval_{1000};
  bool busy_ = false;
  bool quit_ = false;
  std::thread thread_;  // last: starts after the fields it reads are initialised
};

Agent::Agent(AgentOptions options, std::unique_ptr<Client> client,
             std::unique_ptr<Connection> inbox, std::unique_ptr<Heartbeats> heartbeats)
    : options_(std::move(options)),
      client_(std::move(client)),
      inbox_(std::move(inbox)),
      heartbeats_(std::move(heartbeats)) {}

Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::Connect(const AgentOptions& options) {
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(options.address));
  if (options.credit == 0) return Status::InvalidArgument("credit must be at least 1");
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(options.client));
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Client> beats, Client::Connect(options.client));
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Connection> inbox, Connection::Open(options.client));
  auto heartbeats = std::make_unique<Heartbeats>(std::move(beats));
  std::unique_ptr<Agent> agent(
      new Agent(options, std::move(client), std::move(inbox), std::move(heartbeats)));
  // The first registration must succeed, so that a wrong address or a dead daemon shows at once.
  HANDOFF_RETURN_IF_ERROR(agent->Register());
  return agent;
}

Status Agent::Register() {
  return inbox_
      ->Call("receive",
             [&](MsgWriter& w) {
               w.Field("address", options_.address);
               w.Field("credit", options_.credit);
             })
      .status();
}

Status Agent::Run(const Handler& handler) {
  auto last_register = std::chrono::steady_clock::now();
  bool warned = false;
  while (!stop_.load()) {
    auto push = inbox_->NextPush(options_.refresh_interval);
    if (push.ok() && push->has_value()) {
      const msgpack::object* body = (*push)->reply.body().Find("intent");
      auto intent = body ? ReadIntent(*body) : Result<Intent>(Status::Corruption("no intent"));
      if (!intent.ok()) {
        spdlog::warn("ignored an undecodable delivery: {}", intent.status().ToString());
        continue;
      }
      Handle(std::move(intent).value(), handler);
    } else if (!push.ok()) {
      spdlog::warn("receiving from handoffd: {}", push.status().ToString());
    }
    if (std::chrono::steady_clock::now() - last_register < options_.refresh_interval) continue;
    // Idle, or due: register again. This is how a restarted daemon learns of us.
    Status s = Register();
    last_register = std::chrono::steady_clock::now();
    if (!s.ok() && !warned) {
      spdlog::warn("agent {} cannot register with handoffd (will keep trying): {}",
                   options_.address, s.ToString());
    }
    warned = !s.ok();
  }
  return Status::OK();
}

void Agent::Handle(Intent intent, const Handler& handler) {
  Task task(std::move(intent), *client_, stop_);
  Status ack = client_->Ack(task.intent_id(), task.attempt(), /*start=*/true);
  if (!ack.ok() && !ack.IsUnavailable()) {
    // Canceled, ended, or delivered again elsewhere while it waited here: not ours to run.
    spdlog::info("skipping intent {} (attempt {}): {}", task.intent_id(), task.attempt(),
                 ack.ToString());
    return;
  }
  milliseconds interval = options_.heartbeat_interval;
  if (interval.count() == 0) interval = milliseconds(task.intent().lease_ms / 3);
  heartbeats_->Begin(&task, interval);
  Outcome outcome;
  try {
    outcome = handler(task);
  } catch (const std::exception& e) {
    outcome = Outcome::Fail("handler_exception", e.what(), /*retryable=*/true);
  } catch (...) {
    outcome = Outcome::Fail("handler_exception", "the handler threw a non-standard exception",
                            /*retryable=*/true);
  }
  const std::string id = task.intent_id();
  const uint32_t attempt = task.attempt();
  if (task.suspended()) {
    heartbeats_->End();
    spdlog::info("intent {} waits for a human decision; it comes back when one is made", id);
    return;
  }
  // The heartbeats go on while the outcome is reported, so that a report the disk refuses
  // for a while does not cost the lease (and the finished work).
  switch (outcome.kind) {
    case Outcome::Kind::kComplete:
      Report(task, [&] { return client_->Complete(id, attempt, outcome.result); });
      break;
    case Outcome::Kind::kFail:
      Report(task, [&] { return client_->Fail(id, attempt, outcome.error); });
      break;
    case Outcome::Kind::kAbandon:
      if (task.canceled()) {
        spdlog::info("intent {} (attempt {}) was canceled; its handler stopped", id, attempt);
      } else if (task.lease_lost()) {
        spdlog::info("intent {} (attempt {}) was taken back (its lease was lost)", id, attempt);
      } else {
        spdlog::info(
            "abandoned intent {} (attempt {}); it will be delivered again when its "
            "lease runs out",
            id, attempt);
      }
      break;
  }
  heartbeats_->End();
}

void Agent::Report(Task& task, const std::function<Status()>& report) {
  bool warned = false;
  while (true) {
    Status s = report();
    if (s.ok()) {
      if (warned) spdlog::info("the outcome of intent {} is stored", task.intent_id());
      return;
    }
    Observe(s, task.canceled_, task.lease_lost_);
    if (!Retryable(s) || task.lease_lost() || task.canceled()) {
      spdlog::warn("the outcome of intent {} was refused: {}", task.intent_id(), s.ToString());
      return;
    }
    if (stop_.load()) {
      spdlog::warn(
          "stopping with the outcome of intent {} unreported ({}); it is delivered again "
          "when its lease runs out",
          task.intent_id(), s.ToString());
      return;
    }
    // The outcome is worth keeping: try until it is stored or the lease is lost.
    if (!warned) {
      spdlog::warn("reporting intent {}: {}; retrying", task.intent_id(), s.ToString());
      warned = true;
    }
    std::this_thread::sleep_for(kReportRetryPause);
  }
}

}  // namespace handoff
