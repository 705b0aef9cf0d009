// The lifecycle statuses of an intent (AXP-compatible names), why an intent failed, and the
// human approval it may wait for.
//
// See docs/lifecycle.md for the transitions between them. Thread safety: constants and pure
// functions only.

#ifndef HANDOFF_INTENT_STATUS_H_
#define HANDOFF_INTENT_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace handoff {

// Numeric values are stored on disk and sent between nodes (compact updates, docs/protocol.md):
// they must never be reordered.
enum class IntentStatus : uint8_t {
  kCreated = 0,
  kSubmitted = 1,     // durably stored on the origin node, queued for delivery
  kDelivered = 2,     // pushed to an agent connection, which now holds a lease
  kAcknowledged = 3,  // the agent confirmed it received the intent
  kInProgress = 4,    // the agent is working (first heartbeat or checkpoint)
  kWaiting = 5,       // paused; see waiting_reason
  kCompleted = 6,     // terminal: the agent returned a result
  kFailed = 7,        // terminal: the agent failed it, or it could not be delivered
  kCanceled = 8,      // terminal: cancelled by a sender or operator
  kTimedOut = 9,      // terminal: its deadline passed
};

inline constexpr int kIntentStatusCount = 10;

// "CREATED", "SUBMITTED", ...
std::string_view IntentStatusName(IntentStatus status);
// Inverse of IntentStatusName; accepts any letter case. nullopt for an unknown name.
std::optional<IntentStatus> ParseIntentStatus(std::string_view name);

constexpr bool IsTerminal(IntentStatus s) {
  return s == IntentStatus::kCompleted || s == IntentStatus::kFailed ||
         s == IntentStatus::kCanceled || s == IntentStatus::kTimedOut;
}

// True while an agent connection holds a lease on the intent.
constexpr bool IsLeased(IntentStatus s) {
  return s == IntentStatus::kDelivered || s == IntentStatus::kAcknowledged ||
         s == IntentStatus::kInProgress;
}

// Why an intent failed. `code` is a short machine-readable word ("exit_status",
// "lease_expired", ...), `message` is for people.
struct ErrorInfo {
  std::string code;
  std::string message;
  bool retryable = false;

  friend bool operator==(const ErrorInfo&, const ErrorInfo&) = default;
};

// A human checkpoint: the question asked and, once made, the decision.
struct Approval {
  std::string question;
  std::vector<std::string> outcomes;  // the choices offered; empty: approve or reject
  std::string requested_by;           // the sender (before delivery) or the agent (mid-work)
  int64_t requested_at_ms = 0;
  bool mid_work = false;  // asked by the agent while working, rather than before delivery
  std::string decision;   // "approved", "rejected", or one of `outcomes`; empty until decided
  std::string comment;
  std::string decided_by;
  int64_t decided_at_ms = 0;

  bool decided() const { return !decision.empty(); }
};

}  // namespace handoff

#endif  // HANDOFF_INTENT_STATUS_H_
