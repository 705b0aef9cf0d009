// The records a client sees: an intent with its current state, and the events of its history.
//
// Payloads, checkpoints and results are JSON values (nlohmann::json); on the wire they travel as
// msgpack. Times are Unix milliseconds (UTC). Thread safety: plain values.

#ifndef HANDOFF_INTENT_H_
#define HANDOFF_INTENT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "handoff/intent_status.h"

namespace handoff {

using Json = nlohmann::json;

struct Intent {
  std::string intent_id;    // UUIDv7, text form
  std::string intent_type;  // intent.<name>.v<N>
  std::string from_agent;   // agent://org/env/name
  std::string to_agent;
  Json payload;  // an object
  std::string correlation_id;
  std::string parent_id;
  int64_t lease_ms = 0;

  IntentStatus status = IntentStatus::kCreated;
  std::string waiting_reason;     // HUMAN, AGENT, TOOL, TIME; empty unless WAITING
  uint32_t delivery_attempt = 0;  // 0 until first delivered
  Json checkpoint;                // null until the agent saves one
  Json result;                    // null until COMPLETED
  std::optional<ErrorInfo> error;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  uint32_t seq = 0;                     // seq of the latest event
  std::string origin_node;              // the node that accepted the send
  std::string target_node;              // the node that delivers it; empty when that is the origin
  int64_t deadline_ms = 0;              // 0: none
  uint32_t max_attempts = 0;            // 0: unlimited
  std::optional<ErrorInfo> last_error;  // the latest failed attempt's error
  std::string idempotency_key;
  std::string reply_to;
  std::string replay_of;
  std::optional<Approval> approval;  // the latest human checkpoint, asked or decided
};

struct Event {
  std::string intent_id;   // empty for an event of the node itself (address.paused, ...)
  uint32_t seq = 0;        // per intent, strictly increasing from 1
  std::string event_type;  // intent.created, intent.submitted, intent.delivered, ...
  IntentStatus status = IntentStatus::kCreated;  // status after the event
  int64_t at_ms = 0;
  std::string node;   // node where it happened
  std::string actor;  // agent address, "system", or the operator
  Json details;       // event-specific object; may be null
};

// One line of a node's audit trail: an event and its place in the node-wide order.
struct AuditEntry {
  uint64_t audit_seq = 0;  // 1, 2, 3, ... per node, in the order events were recorded
  Event event;
};

}  // namespace handoff

#endif  // HANDOFF_INTENT_H_
