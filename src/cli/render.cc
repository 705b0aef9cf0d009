#include "cli/render.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "base/time_format.h"
#include "base/units.h"

namespace handoff::cli {

std::string CompactJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

// Pads every row's columns to the widest cell.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  return out.str();
}

}  // namespace

OrderedJson IntentJson(const Intent& in, bool with_blobs) {
  OrderedJson j = OrderedJson::object();
  j["intent_id"] = in.intent_id;
  j["intent_type"] = in.intent_type;
  j["from_agent"] = in.from_agent;
  j["to_agent"] = in.to_agent;
  j["status"] = std::string(IntentStatusName(in.status));
  j["waiting_reason"] = in.waiting_reason.empty() ? OrderedJson() : OrderedJson(in.waiting_reason);
  j["delivery_attempt"] = in.delivery_attempt;
  if (with_blobs) {
    j["payload"] = in.payload;
    j["checkpoint"] = in.checkpoint;
    j["result"] = in.result;
  }
  if (in.error) {
    j["error"] = OrderedJson{{"code", in.error->code},
                             {"message", in.error->message},
                             {"retryable", in.error->retryable}};
  } else {
    j["error"] = nullptr;
  }
  j["correlation_id"] = in.correlation_id.empty() ? OrderedJson() : OrderedJson(in.correlation_id);
  j["parent_id"] = in.parent_id.empty() ? OrderedJson() : OrderedJson(in.parent_id);
  j["lease_ms"] = in.lease_ms;
  j["deadline"] = in.deadline_ms != 0 ? OrderedJson(FormatRfc3339(in.deadline_ms)) : OrderedJson();
  j["max_attempts"] = in.max_attempts;
  j["idempotency_key"] =
      in.idempotency_key.empty() ? OrderedJson() : OrderedJson(in.idempotency_key);
  j["reply_to"] = in.reply_to.empty() ? OrderedJson() : OrderedJson(in.reply_to);
  j["replay_of"] = in.replay_of.empty() ? OrderedJson() : OrderedJson(in.replay_of);
  j["approval"] = in.approval ? ApprovalJson(*in.approval) : OrderedJson();
  if (in.last_error) {
    j["last_error"] = OrderedJson{{"code", in.last_error->code},
                                  {"message", in.last_error->message},
                                  {"retryable", in.last_error->retryable}};
  } else {
    j["last_error"] = nullptr;
  }
  j["origin_node"] = in.origin_node;
  j["target_node"] = in.target_node.empty() ? OrderedJson() : OrderedJson(in.target_node);
  j["created_at"] = FormatRfc3339(in.created_at_ms);
  j["updated_at"] = FormatRfc3339(in.updated_at_ms);
  j["seq"] = in.seq;
  return j;
}

OrderedJson ApprovalJson(const Approval& a) {
  OrderedJson j{{"question", a.question},
                {"outcomes", a.outcomes},
                {"requested_by", a.requested_by},
                {"requested_at", FormatRfc3339(a.requested_at_ms)},
                {"mid_work", a.mid_work},
                {"decision", a.decided() ? OrderedJson(a.decision) : OrderedJson()}};
  if (a.decided()) {
    j["comment"] = a.comment;
    j["decided_by"] = a.decided_by;
    j["decided_at"] = FormatRfc3339(a.decided_at_ms);
  }
  return j;
}

std::string ApprovalsText(const std::vector<Intent>& intents, int64_t now_ms) {
  std::vector<std::vector<std::string>> rows = {
      {"INTENT_ID", "ASKED_BY", "AGE", "OUTCOMES", "QUESTION"}};
  for (const Intent& in : intents) {
    if (!in.approval) continue;
    std::string outcomes;
    for (const std::string& o : in.approval->outcomes)
      outcomes += (outcomes.empty() ? "" : ",") + o;
    rows.push_back({in.intent_id, in.approval->requested_by,
                    FormatDurationMs((now_ms - in.approval->requested_at_ms) / 1000 * 1000),
                    outcomes.empty() ? "approve/reject" : outcomes, in.approval->question});
  }
  return Table(rows);
}

OrderedJson EventJson(const Event& e) {
  // An event of the node itself (address.paused, ...) belongs to no intent and has no status.
  const bool node_event = e.intent_id.empty();
  return OrderedJson{
      {"intent_id", node_event ? OrderedJson() : OrderedJson(e.intent_id)},
      {"seq", e.seq},
      {"event_type", e.event_type},
      {"status", node_event ? OrderedJson() : OrderedJson(std::string(IntentStatusName(e.status)))},
      {"at", FormatRfc3339(e.at_ms)},
      {"node", e.node},
      {"actor", e.actor},
      {"details", e.details}};
}

std::string IntentText(const Intent& in) {
  std::vector<std::vector<std::string>> rows = {
      {"intent_id:", in.intent_id},
      {"intent_type:", in.intent_type},
      {"from_agent:", in.from_agent},
      {"to_agent:", in.to_agent},
      {"status:", std::string(IntentStatusName(in.status)) +
                      (in.waiting_reason.empty() ? "" : " (" + in.waiting_reason + ")")},
      {"delivery_attempt:", std::to_string(in.delivery_attempt)},
      {"created_at:", FormatRfc3339(in.created_at_ms)},
      {"updated_at:", FormatRfc3339(in.updated_at_ms)},
      {"origin_node:", in.origin_node},
  };
  if (!in.target_node.empty()) rows.push_back({"target_node:", in.target_node});
  if (!in.correlation_id.empty()) rows.push_back({"correlation_id:", in.correlation_id});
  if (!in.parent_id.empty()) rows.push_back({"parent_id:", in.parent_id});
  if (!in.reply_to.empty()) rows.push_back({"reply_to:", in.reply_to});
  if (!in.replay_of.empty()) rows.push_back({"replay_of:", in.replay_of});
  if (in.approval) {
    std::string line = "\"" + in.approval->question + "\" asked by " + in.approval->requested_by;
    if (in.approval->decided()) {
      line += "; " + in.approval->decision + " by " + in.approval->decided_by +
              (in.approval->comment.empty() ? "" : " (" + in.approval->comment + ")");
    } else {
      line += "; waiting";
    }
    rows.push_back({"approval:", line});
  }
  rows.push_back({"payload:", CompactJson(in.payload)});
  rows.push_back({"checkpoint:", CompactJson(in.checkpoint)});
  rows.push_back({"result:", CompactJson(in.result)});
  if (in.deadline_ms != 0) rows.push_back({"deadline:", FormatRfc3339(in.deadline_ms)});
  if (in.last_error && (!in.error || in.error->code != in.last_error->code)) {
    rows.push_back({"last_error:", in.last_error->code + ": " + in.last_error->message});
  }
  if (in.error) {
    rows.push_back({"error:", in.error->code + ": " + in.error->message +
                                  (in.error->retryable ? " (retryable)" : "")});
  }
  return Table(rows);
}

std::string EventsText(const std::vector<Event>& events) {
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "AT", "EVENT", "STATUS", "NODE", "ACTOR", "DETAILS"}};
  for (const Event& e : events) {
    rows.push_back({std::to_string(e.seq), FormatRfc3339(e.at_ms), e.event_type,
                    std::string(IntentStatusName(e.status)), e.node, e.actor,
                    e.details.is_null() ? "" : CompactJson(e.details)});
  }
  return Table(rows);
}

std::string AuditText(const std::vector<AuditEntry>& entries, bool header) {
  std::vector<std::vector<std::string>> rows;
  if (header)
    rows.push_back({"AUDIT", "AT", "INTENT_ID", "EVENT", "STATUS", "NODE", "ACTOR", "DETAILS"});
  for (const AuditEntry& a : entries) {
    const Event& e = a.event;
    const bool node_event = e.intent_id.empty();
    rows.push_back({std::to_string(a.audit_seq), FormatRfc3339(e.at_ms),
                    node_event ? "-" : e.intent_id, e.event_type,
                    node_event ? "-" : std::string(IntentStatusName(e.status)), e.node, e.actor,
                    e.details.is_null() ? "" : CompactJson(e.details)});
  }
  return Table(rows);
}

std::string ListText(const std::vector<Intent>& intents) {
  std::vector<std::vector<std::string>> rows = {
      {"INTENT_ID", "STATUS", "ATTEMPT", "TYPE", "TO", "UPDATED"}};
  for (const Intent& in : intents) {
    rows.push_back({in.intent_id, std::string(IntentStatusName(in.status)),
                    std::to_string(in.delivery_attempt), in.intent_type, in.to_agent,
                    FormatRfc3339(in.updated_at_ms)});
  }
  return Table(rows);
}

std::string DeadLettersText(const std::vector<Intent>& intents, int64_t now_ms) {
  std::vector<std::vector<std::string>> rows = {
      {"INTENT_ID", "TYPE", "TO", "ATTEMPTS", "AGE", "REASON"}};
  for (const Intent& in : intents) {
    std::string reason = in.error ? in.error->code + ": " + in.error->message : "";
    if (reason.size() > 80) reason = reason.substr(0, 77) + "...";
    rows.push_back({in.intent_id, in.intent_type, in.to_agent, std::to_string(in.delivery_attempt),
                    FormatDurationMs((now_ms - in.updated_at_ms) / 1000 * 1000), reason});
  }
  return Table(rows);
}

std::string StatusText(const Json& s) {
  std::vector<std::vector<std::string>> rows;
  for (const char* key : {"node", "version", "pid", "agent_endpoint", "agent_stream",
                          "peer_endpoint", "data_dir", "fsync", "data_bytes", "map_size",
                          "uptime_ms", "leases", "waiters", "peer_security", "public_key"}) {
    if (!s.contains(key)) continue;
    const Json& v = s[key];
    rows.push_back({std::string(key) + ":", v.is_string() ? v.get<std::string>() : CompactJson(v)});
  }
  if (s.contains("intents") && s["intents"].is_object()) {
    std::string counts;
    for (const auto& [status, n] : s["intents"].items()) {
      if (n.is_number() && n.get<int64_t>() > 0) {
        counts += (counts.empty() ? "" : ", ") + status + "=" + CompactJson(n);
      }
    }
    rows.push_back({"intents:", counts.empty() ? "none" : counts});
  }
  if (s.contains("commits")) {
    std::string commits = CompactJson(s["commits"]);
    if (s.contains("commit_us_avg") && s["commits"].is_number() &&
        s["commits"].get<int64_t>() > 0) {
      char timing[96];
      std::snprintf(timing, sizeof(timing), " (%.2f ms each on average, slowest %.2f ms)",
                    s.value("commit_us_avg", 0.0) / 1000.0, s.value("commit_us_max", 0.0) / 1000.0);
      commits += timing;
    }
    rows.push_back({"commits:", commits});
  }
  if (s.contains("purged")) rows.push_back({"purged:", CompactJson(s["purged"])});
  if (s.contains("accepting_sends")) {
    rows.push_back({"sends:", s["accepting_sends"].get<bool>()
                                  ? "accepted"
                                  : "REFUSED: the store is full (purge or raise map_size)"});
  }
  if (s.value("auth_failures", 0) > 0) {
    rows.push_back({"auth_failures:",
                    CompactJson(s["auth_failures"]) + " (unknown keys " +
                        CompactJson(s.value("auth_failures_unknown_key", Json(0))) +
                        ", handshakes " + CompactJson(s.value("auth_failures_handshake", Json(0))) +
                        ", messages under another peer's name " +
                        CompactJson(s.value("auth_failures_impersonation", Json(0))) + ")"});
  }
  if (s.contains("peers") && s["peers"].is_array()) {
    for (const Json& p : s["peers"]) {
      const std::string state =
          p.value("state", p.value("connected", false) ? "connected" : "down");
      std::string line = p.value("name", "") + " " + (state == "down" ? "DISCONNECTED" : state);
      if (state == "auth_failed") line += " (" + p.value("auth_error", "") + ")";
      if (p.value("auth_failures", 0) > 0)
        line += " auth_failures=" + CompactJson(p["auth_failures"]);
      if (p.value("refused", 0) > 0) line += " refused=" + CompactJson(p["refused"]);
      line += " outbox=" + CompactJson(p.value("outbox_depth", Json(0))) +
              " retransmissions=" + CompactJson(p.value("retransmissions", Json(0)));
      if (p.contains("last_heard_ms_ago")) {
        line += " last_heard=" + CompactJson(p["last_heard_ms_ago"]) + "ms_ago";
      }
      if (p.contains("oldest_pending_age_ms")) {
        line += " oldest_pending=" + CompactJson(p["oldest_pending_age_ms"]) + "ms";
      }
      rows.push_back({"peer:", line});
    }
  }
  if (s.contains("receivers") && s["receivers"].is_array()) {
    for (const Json& r : s["receivers"]) {
      rows.push_back({"receiver:", r.value("address", "") +
                                       " credit=" + CompactJson(r.value("credit", Json(0))) +
                                       " held=" + CompactJson(r.value("held", Json(0)))});
    }
  }
  if (s.value("receivers_total", 0) >
      static_cast<int64_t>(s.value("receivers", Json::array()).size())) {
    rows.push_back({"receivers:", CompactJson(s["receivers_total"]) +
                                      " in all (handoffctl agents lists them by address)"});
  }
  if (s.contains("paused") && s["paused"].is_array()) {
    for (const Json& p : s["paused"]) {
      std::string line = p.value("address", "") + " by " + p.value("actor", "") + " at " +
                         FormatRfc3339(p.value("at", int64_t{0}));
      if (!p.value("reason", "").empty()) line += ": " + p.value("reason", "");
      rows.push_back({"PAUSED:", line});
    }
  }
  return Table(rows);
}

namespace {

int64_t Int(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : 0;
}

// A time in ms since the epoch as RFC 3339; null for 0 (never).
OrderedJson TimeOrNull(int64_t ms) {
  return ms == 0 ? OrderedJson() : OrderedJson(FormatRfc3339(ms));
}

OrderedJson SecondsAgo(int64_t ms, int64_t now_ms) {
  if (ms == 0) return OrderedJson();
  return OrderedJson(static_cast<double>(std::max<int64_t>(0, now_ms - ms)) / 1000.0);
}

}  // namespace

OrderedJson AgentsJson(const Json& reply, int64_t now_ms) {
  OrderedJson agents = OrderedJson::array();
  for (const Json& a : reply.value("agents", Json::array())) {
    OrderedJson connections = OrderedJson::array();
    for (const Json& c : a.value("connections", Json::array())) {
      connections.push_back({{"connection", c.value("connection", "")},
                             {"credit", Int(c, "credit")},
                             {"held", Int(c, "held")},
                             {"last_heard", TimeOrNull(Int(c, "last_heard"))},
                             {"idle_seconds", SecondsAgo(Int(c, "last_heard"), now_ms)}});
    }
    OrderedJson row = {{"address", a.value("address", "")},
                       {"receivers", Int(a, "receivers")},
                       {"credit", Int(a, "credit")},
                       {"in_flight", Int(a, "in_flight")},
                       {"queued", Int(a, "queued")},
                       {"last_heard", TimeOrNull(Int(a, "last_heard"))},
                       {"idle_seconds", SecondsAgo(Int(a, "last_heard"), now_ms)},
                       {"paused", a.value("paused", false)}};
    if (a.value("paused", false)) {
      row["pause_reason"] = a.value("pause_reason", "");
      row["paused_by"] = a.value("paused_by", "");
      row["paused_at"] = TimeOrNull(Int(a, "paused_at"));
    }
    row["connections"] = std::move(connections);
    agents.push_back(std::move(row));
  }
  return OrderedJson{{"agents", std::move(agents)},
                     {"receiver_timeout_seconds",
                      static_cast<double>(Int(reply, "receiver_timeout_ms")) / 1000.0}};
}

std::string AgentsText(const Json& reply, int64_t now_ms) {
  std::vector<std::vector<std::string>> rows = {
      {"ADDRESS", "RECEIVERS", "CREDIT", "IN_FLIGHT", "QUEUED", "LAST_HEARD", "PAUSED"}};
  for (const Json& a : reply.value("agents", Json::array())) {
    const int64_t heard = Int(a, "last_heard");
    std::string paused = "no";
    if (a.value("paused", false)) {
      paused =
          "PAUSED by " + a.value("paused_by", "") + " at " + FormatRfc3339(Int(a, "paused_at"));
      if (!a.value("pause_reason", "").empty()) paused += ": " + a.value("pause_reason", "");
    }
    rows.push_back(
        {a.value("address", ""), std::to_string(Int(a, "receivers")),
         std::to_string(Int(a, "credit")), std::to_string(Int(a, "in_flight")),
         std::to_string(Int(a, "queued")),
         heard == 0 ? "-" : FormatDurationMs(std::max<int64_t>(0, now_ms - heard)) + " ago",
         paused});
  }
  if (rows.size() == 1) return "no local address has receivers, queued intents or a pause\n";
  return Table(rows);
}

}  // namespace handoff::cli
