#include "node/lifecycle.h"

#include <string>

namespace handoff::node {

bool CanTransition(IntentStatus from, IntentStatus to) {
  using S = IntentStatus;
  if (IsTerminal(from) || from == to) return false;
  // Any live intent may fail, be cancelled, or time out.
  if (to == S::kFailed || to == S::kCanceled || to == S::kTimedOut) return true;
  switch (from) {
    case S::kCreated:
      return to == S::kSubmitted;
    case S::kSubmitted:
      return to == S::kDelivered || to == S::kWaiting || to == S::kCompleted;
    case S::kDelivered:
      return to == S::kAcknowledged || to == S::kInProgress || to == S::kCompleted ||
             to == S::kWaiting || to == S::kSubmitted;
    case S::kAcknowledged:
      return to == S::kInProgress || to == S::kCompleted || to == S::kWaiting ||
             to == S::kSubmitted;
    case S::kInProgress:
      return to == S::kCompleted || to == S::kWaiting || to == S::kSubmitted;
    case S::kWaiting:
      return to == S::kInProgress || to == S::kSubmitted;
    default:
      return false;
  }
}

Status CheckTransition(IntentStatus from, IntentStatus to) {
  if (CanTransition(from, to)) return Status::OK();
  std::string msg = "an intent that is " + std::string(IntentStatusName(from)) + " cannot become " +
                    std::string(IntentStatusName(to));
  if (IsTerminal(from)) msg += " (it has already ended)";
  return Status::Conflict(msg);
}

std::string_view EventTypeFor(IntentStatus to) {
  switch (to) {
    case IntentStatus::kCreated:
      return "intent.created";
    case IntentStatus::kSubmitted:
      return "intent.submitted";
    case IntentStatus::kDelivered:
      return "intent.delivered";
    case IntentStatus::kAcknowledged:
      return "intent.acknowledged";
    case IntentStatus::kInProgress:
      return "intent.in_progress";
    case IntentStatus::kWaiting:
      return "intent.waiting";
    case IntentStatus::kCompleted:
      return "intent.completed";
    case IntentStatus::kFailed:
      return "intent.failed";
    case IntentStatus::kCanceled:
      return "intent.canceled";
    case IntentStatus::kTimedOut:
      return "intent.timed_out";
  }
  return "intent.unknown";
}

}  // namespace handoff::node
