// The kill switch: an operator pauses a local address, and nothing more is delivered to it
// until it is resumed. Queued intents stay SUBMITTED; sends to it are still accepted. A pause is
// a row of the "paused" table, so it outlives restarts, and an event of the node itself in the
// audit trail. For an address another node hosts, the pause travels there as a control message.

#include <spdlog/spdlog.h>

#include "base/names.h"
#include "node/engine.h"

namespace handoff::node {
namespace {

std::string EncodePause(const Engine::PauseInfo& p) {
  MsgWriter w;
  w.BeginMap();
  w.Field("reason", p.reason);
  w.Field("actor", p.actor);
  w.Field("at", p.at_ms);
  w.Field("from_node", p.from_node);
  w.EndMap();
  return w.Release();
}

Result<Engine::PauseInfo> DecodePause(std::string_view address, std::string_view bytes) {
  auto corrupt = [&](const Status& s) {
    return Status::Corruption("the pause record of " + std::string(address) + ": " + s.message());
  };
  auto handle = Unpack(bytes);
  if (!handle.ok()) return corrupt(handle.status());
  auto m = MapReader::From(handle->get(), "pause");
  if (!m.ok()) return corrupt(m.status());
  Engine::PauseInfo p;
  Status s = m->OptString("reason", &p.reason);
  if (s.ok()) s = m->OptString("actor", &p.actor);
  if (s.ok()) s = m->OptInt("at", &p.at_ms);
  if (s.ok()) s = m->OptString("from_node", &p.from_node);
  if (!s.ok()) return corrupt(s);
  return p;
}

}  // namespace

Status Engine::LoadPaused(const Txn& txn) {
  paused_.clear();
  return store_.ScanPaused(txn, [&](std::string_view address, std::string_view value) -> Status {
    HANDOFF_ASSIGN_OR_RETURN(PauseInfo p, DecodePause(address, value));
    paused_.emplace(std::string(address), std::move(p));
    return Status::OK();
  });
}

Status Engine::RecordNodeEvent(Txn& txn, std::string_view event_type, std::string_view actor,
                               std::string details) {
  if (node_event_seq_ == UINT32_MAX) {
    return Status::Conflict("this node has recorded the most events of its own it can");
  }
  EventRecord e;  // the all-zero intent id: the node's own events (storage/schema.h)
  e.seq = ++node_event_seq_;
  e.event_type = std::string(event_type);
  e.at_ms = clock_.NowMs();
  e.node = options_.node_name;
  e.actor = std::string(actor);
  e.details = std::move(details);
  return WriteEvent(txn, e, &node_last_audit_seq_);
}

Result<std::string> Engine::Pause(Txn& txn, Batch& batch, const std::string& address,
                                  std::string_view actor, std::string_view reason, bool* changed) {
  return SetPaused(txn, batch, address, true, actor, reason, "", changed);
}

Result<std::string> Engine::Resume(Txn& txn, Batch& batch, const std::string& address,
                                   std::string_view actor, bool* changed) {
  return SetPaused(txn, batch, address, false, actor, "", "", changed);
}

Status Engine::ApplyRemotePause(Txn& txn, Batch& batch, const std::string& peer,
                                const std::string& address, bool pause, std::string_view actor,
                                std::string_view reason) {
  const std::string host = NodeFor(address);
  if (!host.empty()) {
    std::string message = pause ? "'pause' of " : "'resume' of ";
    message.append(address).append(", which node ").append(host);
    message.append(" hosts by this node's routes, not this node");
    return Status::InvalidArgument(message);
  }
  bool changed = false;
  return SetPaused(txn, batch, address, pause, actor, reason, peer, &changed).status();
}

Result<std::string> Engine::SetPaused(Txn& txn, Batch& batch, const std::string& address,
                                      bool pause, std::string_view actor, std::string_view reason,
                                      const std::string& from_node, bool* changed) {
  const std::string host = from_node.empty() ? NodeFor(address) : std::string();
  const bool was = IsPaused(address);
  *changed = host.empty() ? was != pause : true;
  if (!*changed) return host;

  MsgWriter details;
  details.BeginMap();
  details.Field("address", address);
  if (pause && !reason.empty()) details.Field("reason", reason);
  if (!host.empty()) details.Field("forwarded_to", host);
  if (!from_node.empty()) details.Field("from_node", from_node);
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(
      RecordNodeEvent(txn, pause ? "address.paused" : "address.resumed", actor, details.Release()));
  if (!host.empty()) {
    HANDOFF_RETURN_IF_ERROR(Emit(txn, batch, host, wire::peer_kind::kControl, [&](MsgWriter& w) {
      w.Field("action", pause ? "pause" : "resume");
      w.Field("address", address);
      w.Field("actor", actor);
      w.Field("reason", reason);
    }));
    spdlog::info("{} of {} forwarded to node {}, which hosts it (by {}{}{})",
                 pause ? "pause" : "resume", address, host, actor, reason.empty() ? "" : ": ",
                 reason);
    return host;
  }
  if (pause) {
    PauseInfo p{std::string(reason), std::string(actor), clock_.NowMs(), from_node};
    HANDOFF_RETURN_IF_ERROR(store_.PutPaused(txn, address, EncodePause(p)));
    paused_.insert_or_assign(address, std::move(p));
    spdlog::warn("{} paused by {}{}{}{}: its intents queue until it is resumed", address, actor,
                 from_node.empty() ? "" : " (from node " + from_node + ")",
                 reason.empty() ? "" : ": ", reason);
  } else {
    HANDOFF_RETURN_IF_ERROR(store_.DeletePaused(txn, address));
    paused_.erase(address);
    ready_.insert(address);  // a hint: DeliverNext finds out whether anything is queued
    spdlog::info("{} resumed by {}{}", address, actor,
                 from_node.empty() ? "" : " (from node " + from_node + ")");
  }
  return host;
}

}  // namespace handoff::node
