// How handoffctl shows records: JSON objects for --json, aligned text for people.
// Thread safety: pure functions.

#ifndef HANDOFF_CLI_RENDER_H_
#define HANDOFF_CLI_RENDER_H_

#include <string>
#include <vector>

#include "handoff/intent.h"

namespace handoff::cli {

// The JSON form of an intent: intent_id, intent_type, from_agent, to_agent, status,
// delivery_attempt, payload, checkpoint, result, error, created_at, updated_at (RFC 3339), seq,
// and the optional fields. `with_blobs` false leaves out payload, checkpoint and result.
// Keys keep the order written here, so output reads naturally.
using OrderedJson = nlohmann::ordered_json;
// One line of JSON; bytes that are not UTF-8 (none are stored now) show as U+FFFD.
std::string CompactJson(const Json& value);

OrderedJson IntentJson(const Intent& intent, bool with_blobs = true);
OrderedJson EventJson(const Event& event);
OrderedJson ApprovalJson(const Approval& a);
// Intents waiting for a human: id, question, outcomes, asked by, age.
std::string ApprovalsText(const std::vector<Intent>& intents, int64_t now_ms);

std::string IntentText(const Intent& intent);
std::string EventsText(const std::vector<Event>& events);
// Audit lines; the header only when `header` (follow mode prints it once).
std::string AuditText(const std::vector<AuditEntry>& entries, bool header);
std::string ListText(const std::vector<Intent>& intents);
std::string StatusText(const Json& status);
// `agents`: the daemon's reply with its times as RFC 3339 (null when never) and ages in
// seconds, and as a table.
OrderedJson AgentsJson(const Json& reply, int64_t now_ms);
std::string AgentsText(const Json& reply, int64_t now_ms);
// Failed intents: id, type, recipient, attempts, age, reason. `now_ms` dates the ages.
std::string DeadLettersText(const std::vector<Intent>& intents, int64_t now_ms);

}  // namespace handoff::cli

#endif  // HANDOFF_CLI_RENDER_H_
