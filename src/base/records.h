// The intent and event records every layer shares, and their msgpack encoding: storage keeps
// them in its tables, the daemon sends them to clients, clients decode them.
//
// Records are msgpack maps with the same field names as the agent protocol (docs/protocol.md),
// so a stored record reads like a wire record. Decoding ignores unknown fields and defaults
// missing ones, so a newer writer's records remain readable. Payload, checkpoint and result are
// not part of IntentRecord: they live in the blobs table and are written only when they change.
//
// Thread safety: plain values and pure functions.

#ifndef HANDOFF_BASE_RECORDS_H_
#define HANDOFF_BASE_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/intent_id.h"
#include "base/msgpack_io.h"
#include "handoff/intent_status.h"
#include "handoff/status.h"

namespace handoff {

// Which of an intent's blobs (payload, checkpoint, result: kept apart from its record) a read
// takes: all three, all but the payload (for the agent that sent it, which has it), or none.
enum class Blobs : uint8_t { kAll, kAllButPayload, kNone };

struct IntentRecord {
  IntentId id;
  std::string intent_type;
  std::string from_agent;
  std::string to_agent;
  std::string correlation_id;
  std::string parent_id;
  std::string origin_node;  // node that accepted the send and holds the full history
  std::string target_node;  // node that delivers it to its agent; empty: the origin itself
  int64_t lease_ms = 0;

  IntentStatus status = IntentStatus::kCreated;
  std::string waiting_reason;
  uint32_t delivery_attempt = 0;
  bool has_checkpoint = false;
  std::optional<ErrorInfo> error;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  uint32_t seq = 0;  // seq of the latest event

  // Time limit and retry policy, resolved at send time (node defaults filled in), so a change of
  // config does not change the schedule of intents already accepted.
  int64_t deadline_ms = 0;    // 0: none
  uint32_t max_attempts = 0;  // deliveries, lease expiries included; 0: unlimited
  int64_t retry_initial_ms = 0;
  double retry_multiplier = 0;
  int64_t retry_max_ms = 0;
  std::optional<ErrorInfo> last_error;  // the latest failed attempt's error
  std::string idempotency_key;          // with from_agent, names the request that made it
  std::string reply_to;                 // gets an intent.reply.v1 with the outcome when it ends
  std::string replay_of;                // the ended intent this one replays
  std::optional<Approval> approval;     // the latest human checkpoint, asked or decided

  // On the origin of a forwarded intent: the destination's seq of the last update applied, so
  // a retransmitted update is recognised and skipped. On its destination: the seq of the last
  // event sent to the origin, below `seq` while news of it is held (Engine::EmitUpdates).
  uint64_t remote_seq = 0;

  // The audit seq of its latest event (0: none yet), where its history's chain starts
  // (EventRecord::prev_audit_seq); stored, not sent.
  uint64_t last_audit_seq = 0;

  // On the origin of a forwarded intent: the link seq of the outbox message that forwards it,
  // stored without its payload (storage::OutboxPayload), so that a purge while it waits can
  // put the payload back into it; 0: none. Stored, not sent.
  uint64_t forward_seq = 0;
};

struct EventRecord {
  IntentId id;
  uint32_t seq = 0;
  std::string event_type;
  IntentStatus status = IntentStatus::kCreated;
  int64_t at_ms = 0;
  std::string node;
  std::string actor;
  std::string details;  // one encoded msgpack map, or empty
  // Its place in the node-wide audit trail (0: not known), and the place of the event of the
  // same intent before it (0: none, it is the first); stored, not sent.
  uint64_t audit_seq = 0;
  uint64_t prev_audit_seq = 0;
};

// An ErrorInfo as a map {code, message, retryable}, the one form it takes everywhere.
void WriteErrorInfo(MsgWriter& w, const ErrorInfo& error);
Status ReadErrorInfo(const MapReader& m, ErrorInfo* out);
// An Approval as a map {question, outcomes, requested_by, requested_at, mid_work, decision,
// comment, decided_by, decided_at}.
void WriteApproval(MsgWriter& w, const Approval& a);
Status ReadApproval(const MapReader& m, Approval* out);

// Writes the record's fields into an open map (the caller owns BeginMap/EndMap), so the same
// fields can be embedded in a wire message next to the blobs.
void WriteIntentFields(MsgWriter& w, const IntentRecord& r);
void WriteEventFields(MsgWriter& w, const EventRecord& e);

// The stored form of records (the values of the intents and audit tables): a compact binary
// encoding private to a data directory. Decode also reads the msgpack maps earlier versions
// stored.
std::string EncodeIntent(const IntentRecord& r);
std::string EncodeEvent(const EventRecord& e);
// The same in an earlier stored form, version 1 to 4 (records.cc): for tests of reading what
// earlier releases wrote. A field the version lacks is left out.
std::string EncodeStoredIntent(const IntentRecord& r, int version);
std::string EncodeStoredEvent(const EventRecord& e, int version);

// Decodes from a map reader; used for stored bytes and for wire messages alike.
Status ReadIntentFields(const MapReader& m, IntentRecord* r);
// With `node_events`, an empty intent_id reads as the all-zero id: an event of the node itself
// (an audit trail entry), whose status is empty too.
Status ReadEventFields(const MapReader& m, EventRecord* e, bool node_events = false);

Result<IntentRecord> DecodeIntent(std::string_view bytes);
Result<EventRecord> DecodeEvent(std::string_view bytes);
// A stored event's intent id and prev_audit_seq, read from where the current stored form
// keeps them (its first and last bytes) without decoding the rest; older forms are decoded.
Status StoredEventLink(std::string_view bytes, IntentId* id, uint64_t* prev_audit_seq);

}  // namespace handoff

#endif  // HANDOFF_BASE_RECORDS_H_
