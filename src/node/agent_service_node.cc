// AgentService: the operations about the node itself rather than one intent: `status`,
// `agents` (receivers and queues by address) and the kill switch (`pause`, `resume`).

#include <algorithm>
#include <map>
#include <string>

#include "base/names.h"
#include "node/agent_service.h"
#include "node/limits.h"

namespace handoff::node {

using wire::ReplyBuilder;

AgentService::Reply AgentService::OnStatus(Txn&, Batch&, const std::string&,
                                           const wire::Request& req) {
  const int64_t now = engine_.clock().NowMs();
  ReplyBuilder b(req.rid);
  MsgWriter& w = b.w();
  w.Field("node", info_.name);
  w.Field("version", HANDOFF_VERSION);
  w.Field("protocol", wire::kAgentProtocolVersion);
  w.Field("pid", info_.pid);
  w.Field("started_at", info_.started_at_ms);
  w.Field("uptime_ms", now - info_.started_at_ms);
  w.Field("agent_endpoint", info_.agent_endpoint);
  if (!info_.agent_stream.empty()) w.Field("agent_stream", info_.agent_stream);
  if (!info_.peer_endpoint.empty()) w.Field("peer_endpoint", info_.peer_endpoint);
  w.Field("data_dir", info_.data_dir);
  w.Field("fsync", info_.fsync);
  w.Field("map_size", info_.map_size);
  auto used = env_.UsedBytes();
  if (used.ok()) w.Field("data_bytes", *used);
  w.Key("intents");
  w.BeginMap();
  for (int i = 0; i < kIntentStatusCount; ++i) {
    w.Field(IntentStatusName(static_cast<IntentStatus>(i)), engine_.status_counts()[i]);
  }
  w.EndMap();
  w.Field("leases", static_cast<uint64_t>(engine_.lease_count()));
  w.Field("commits", stats_.commits);
  w.Field("writes", stats_.writes);
  w.Field("deliveries", stats_.deliveries);
  w.Field("rejected", stats_.rejected);
  w.Field("lmdb_commits", stats_.lmdb_commits);
  w.Field("log_bytes", stats_.log_bytes);
  w.Field("failed_commits", stats_.failed_commits);
  w.Field("commit_us_avg", stats_.commits > 0 ? stats_.commit_us_total / stats_.commits : 0);
  w.Field("commit_us_max", stats_.commit_us_max);
  w.Field("purged", stats_.purged);
  // False while the store is full, or while the disk refuses writes (then store_error says
  // why): a send now would be refused, or fail with not_stored.
  w.Field("accepting_sends", !refusing_sends_ && store_fault_.ok());
  if (!store_fault_.ok()) w.Field("store_error", store_fault_.ToString());
  w.Field("refused_sends", refused_sends_);
  w.Field("client_backlog_bytes", stats_.backlog_bytes);
  w.Field("backlog_dropped_requests", stats_.backlog_dropped);
  if (stats_.space_in_use != 0) w.Field("data_in_use_bytes", stats_.space_in_use);
  w.Field("waiters", static_cast<uint64_t>(waiters_.size()));
  // Bounded however many connections receive: the first kMaxStatusReceivers, and the count
  // (`handoffctl agents` has them all, by address).
  w.Field("receivers_total", static_cast<uint64_t>(receivers_.size()));
  w.Key("receivers");
  w.BeginArray();
  size_t listed = 0;
  for (const auto& [id, r] : receivers_.all()) {
    if (listed++ == kMaxStatusReceivers) break;
    w.BeginMap();
    w.Field("address", r.address);
    w.Field("credit", r.credit);
    w.Field("held", static_cast<uint64_t>(r.held.size()));
    w.EndMap();
  }
  w.EndArray();
  w.Key("paused");
  WritePaused(w);
  if (peer_status_) peer_status_(w);
  return std::optional<std::string>(b.Finish());
}

void AgentService::WritePaused(MsgWriter& w) const {
  w.BeginArray();
  size_t listed = 0;
  for (const auto& [address, p] : engine_.paused()) {
    if (listed++ == kMaxAgentsListed) break;
    w.BeginMap();
    w.Field("address", address);
    w.Field("reason", p.reason);
    w.Field("actor", p.actor);
    w.Field("at", p.at_ms);
    if (!p.from_node.empty()) w.Field("from_node", p.from_node);
    w.EndMap();
  }
  w.EndArray();
}

std::map<std::string, AddressSummary> SummarizeAddresses(const ReceiverSet& receivers,
                                                         const Engine& engine) {
  std::map<std::string, AddressSummary> rows;
  for (const auto& [key, r] : receivers.all()) {
    AddressSummary& row = rows[r.address];
    row.receivers.push_back(&r);
    row.credit += r.credit;
    row.in_flight += r.held.size();
    row.last_heard_ms = std::max(row.last_heard_ms, receivers.LastHeard(r.routing_id));
  }
  for (const auto& [address, p] : engine.paused()) rows[address];
  for (const std::string& address : engine.ready_addresses()) rows[address];
  return rows;
}

AgentService::Reply AgentService::OnAgents(Txn& txn, Batch&, const std::string&,
                                           const wire::Request& req) {
  std::map<std::string, AddressSummary> rows = SummarizeAddresses(receivers_, engine_);
  ReplyBuilder b(req.rid);
  MsgWriter& w = b.w();
  w.Key("agents");
  w.BeginArray();
  size_t listed = 0;
  for (const auto& [address, row] : rows) {
    HANDOFF_ASSIGN_OR_RETURN(uint64_t queued, engine_.CountQueued(txn, address, kMaxQueuedCounted));
    const bool paused = engine_.IsPaused(address);
    if (row.receivers.empty() && !paused && queued == 0) continue;  // a stale hint
    if (listed++ == kMaxAgentsListed) break;
    w.BeginMap();
    w.Field("address", address);
    w.Field("receivers", static_cast<uint64_t>(row.receivers.size()));
    w.Field("credit", row.credit);
    w.Field("in_flight", row.in_flight);
    w.Field("queued", queued);
    w.Field("last_heard", row.last_heard_ms);  // ms since the epoch; 0: no receiver
    w.Field("paused", paused);
    if (paused) {
      const Engine::PauseInfo& p = engine_.paused().at(address);
      w.Field("pause_reason", p.reason);
      w.Field("paused_by", p.actor);
      w.Field("paused_at", p.at_ms);
    }
    w.Key("connections");
    w.BeginArray();
    for (const Receiver* r : row.receivers) {
      w.BeginMap();
      w.Field("connection", HexId(r->routing_id));
      w.Field("credit", r->credit);
      w.Field("held", static_cast<uint64_t>(r->held.size()));
      w.Field("last_heard", receivers_.LastHeard(r->routing_id));
      w.EndMap();
    }
    w.EndArray();
    w.EndMap();
  }
  w.EndArray();
  w.Field("receiver_timeout_ms", info_.receiver_timeout_ms);
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnPause(Txn& txn, Batch& batch, const std::string&,
                                          const wire::Request& req) {
  const bool pause = req.op == wire::op::kPause;
  MapReader m = req.body();
  std::string address, actor, reason;
  HANDOFF_RETURN_IF_ERROR(m.String("address", &address));
  HANDOFF_RETURN_IF_ERROR(m.OptString("actor", &actor));
  if (pause) HANDOFF_RETURN_IF_ERROR(m.OptString("reason", &reason));
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(address));
  HANDOFF_RETURN_IF_ERROR(CheckIdField("actor", actor));
  if (reason.size() > kMaxQuestionBytes) {
    return Status::InvalidArgument("field 'reason' is over 4 KiB");
  }
  if (!IsValidUtf8(actor) || !IsValidUtf8(reason)) {
    return Status::InvalidArgument("fields 'actor' and 'reason' must be UTF-8 text");
  }
  if (actor.empty()) actor = "operator";
  bool changed = false;
  HANDOFF_ASSIGN_OR_RETURN(std::string forwarded_to,
                           pause ? engine_.Pause(txn, batch, address, actor, reason, &changed)
                                 : engine_.Resume(txn, batch, address, actor, &changed));
  ReplyBuilder b(req.rid);
  b.w().Field("address", address);
  b.w().Field("paused", pause);
  b.w().Field("changed", changed);
  if (!forwarded_to.empty()) b.w().Field("forwarded_to", forwarded_to);
  return std::optional<std::string>(b.Finish());
}

}  // namespace handoff::node
