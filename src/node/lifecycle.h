// The lifecycle graph: which status may follow which, and the event type each move records.
//
//   CREATED -> SUBMITTED -> DELIVERED -> ACKNOWLEDGED -> IN_PROGRESS -> COMPLETED
//   leased (DELIVERED | ACKNOWLEDGED | IN_PROGRESS) -> SUBMITTED   lease expired: redeliver
//   any non-terminal -> FAILED | CANCELED | TIMED_OUT
//   SUBMITTED -> COMPLETED | FAILED    a result that arrives after the lease expired but before
//                                      the intent was delivered again is still accepted
//
// Terminal statuses have no successors, so a second terminal transition is always refused.
// docs/lifecycle.md draws the full graph. Thread safety: pure functions.

#ifndef HANDOFF_NODE_LIFECYCLE_H_
#define HANDOFF_NODE_LIFECYCLE_H_

#include <string_view>

#include "handoff/intent_status.h"
#include "handoff/status.h"

namespace handoff::node {

bool CanTransition(IntentStatus from, IntentStatus to);

// OK, or Conflict naming both statuses.
Status CheckTransition(IntentStatus from, IntentStatus to);

// "intent.submitted", "intent.delivered", ... for an ordinary move into `to`.
std::string_view EventTypeFor(IntentStatus to);

}  // namespace handoff::node

#endif  // HANDOFF_NODE_LIFECYCLE_H_
