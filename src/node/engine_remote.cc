// The peer half of the Engine: forwarding intents to the node that delivers them, and applying
// what peers send (forwarded intents, updates, cancels). See docs/protocol.md, "Peer protocol".

#include <spdlog/spdlog.h>

#include "base/names.h"
#include "node/engine.h"
#include "node/lifecycle.h"
#include "wire/agent_protocol.h"

namespace handoff::node {

bool Engine::IsRemote(const IntentRecord& r) const {
  return !r.target_node.empty() && r.target_node != options_.node_name;
}

bool Engine::IsReplica(const IntentRecord& r) const {
  return !r.origin_node.empty() && r.origin_node != options_.node_name;
}

Status Engine::Emit(Txn& txn, Batch& batch, const std::string& peer, std::string_view kind,
                    const std::function<void(MsgWriter&)>& body,
                    wire::PeerMessageBuilder::Body form, const storage::OutboxPayload* payload) {
  HANDOFF_RETURN_IF_ERROR(EmitUpdates(txn, batch));
  return EmitNow(txn, batch, peer, kind, body, form, payload);
}

Status Engine::EmitUpdates(Txn& txn, Batch& batch) {
  if (updates_.empty()) return Status::OK();
  std::vector<PendingUpdate> updates = std::move(updates_);
  updates_.clear();
  update_of_.clear();
  const int64_t now = clock_.NowMs();
  // Each peer's link counter is read once and written once for the lot, not per update.
  std::map<std::string, uint64_t> last_seq;
  for (PendingUpdate& pending : updates) {
    wire::RemoteUpdate& u = pending.update;
    if (options_.update_delay_ms > 0 && IsLeased(u.status)) {
      // Only news that an agent holds the intent (delivered, acknowledged, started, a
      // heartbeat or checkpoint): it waits for the intent's next change, which an agent
      // that acks or finishes soon makes, to cross the link, be stored and be applied with
      // it as one update. Due update_delay_ms after it was first held (one released by
      // ReleaseHeld is due, and goes now).
      if (!pending.held_due_ms) pending.held_due_ms = now + options_.update_delay_ms;
      if (*pending.held_due_ms > now) {
        const IntentId id = u.id;
        held_order_.emplace(*pending.held_due_ms, id);
        held_[id] = std::move(pending);
        continue;
      }
    }
    if (pending.checkpointed) {
      HANDOFF_RETURN_IF_ERROR(store_.GetBlob(txn, u.id, BlobKind::kCheckpoint, &u.checkpoint));
    }
    if (u.status == IntentStatus::kCompleted) {
      Status s = store_.GetBlob(txn, u.id, BlobKind::kResult, &u.result);
      if (!s.ok() && !s.IsNotFound()) return s;
    }
    auto last = last_seq.find(pending.peer);
    if (last == last_seq.end()) {
      HANDOFF_ASSIGN_OR_RETURN(
          uint64_t stored,
          store_.GetLinkCounter(txn, storage::Store::OutLinkCounter(pending.peer)));
      last = last_seq.emplace(pending.peer, stored).first;
    }
    const uint64_t seq = ++last->second;
    // Stored compact; a link sends it as a map to a peer that does not read that (PeerLink).
    HANDOFF_RETURN_IF_ERROR(PutOutboxMessage(
        txn, batch, pending.peer, seq, wire::peer_kind::kUpdate,
        [&](MsgWriter& w) { wire::WriteCompactUpdate(w, u); },
        wire::PeerMessageBuilder::Body::kArray));
    // Noted on the replica, so that a restart knows whether its origin heard of its last
    // events (Recover); the record is this turn's already unless the update was held.
    Result<IntentRecord*> staged = Stage(txn, u.id);
    if (staged.ok() && (*staged)->remote_seq != u.remote_seq) {
      (*staged)->remote_seq = u.remote_seq;
      Put(**staged);
    } else if (!staged.ok() && !staged.status().IsNotFound()) {
      return staged.status();  // purged this turn (NotFound) needs no note
    }
  }
  for (const auto& [peer, seq] : last_seq) {
    HANDOFF_RETURN_IF_ERROR(store_.SetLinkCounter(txn, storage::Store::OutLinkCounter(peer), seq));
  }
  return Status::OK();
}

void Engine::SetUpdateState(const IntentRecord& r, wire::RemoteUpdate* u) {
  u->id = r.id;
  u->remote_seq = r.seq;
  u->status = r.status;
  u->delivery_attempt = r.delivery_attempt;
  u->waiting_reason = r.waiting_reason;
  u->error = r.error;
  u->last_error = r.last_error;
  u->approval = r.approval;
  u->has_checkpoint = r.has_checkpoint;
}

void Engine::ReleaseHeld() {
  // Bounded per turn, as timers are: after a restart every held update is due at once.
  constexpr size_t kMaxReleasedPerTurn = 1024;
  const int64_t now = clock_.NowMs();
  for (size_t n = 0; n < kMaxReleasedPerTurn && !held_order_.empty(); ++n) {
    const auto [due, id] = *held_order_.begin();
    if (due > now) break;
    held_order_.erase(held_order_.begin());
    // The intent recorded nothing this turn (Record would have taken it): its own update.
    auto held = held_.find(id);
    update_of_.emplace(id, updates_.size());
    updates_.push_back(std::move(held->second));
    held_.erase(held);
  }
}

Status Engine::HoldFromStore(const Txn& txn, const IntentRecord& r, int64_t due_ms) {
  PendingUpdate pending;
  pending.peer = r.origin_node;
  wire::RemoteUpdate& u = pending.update;
  SetUpdateState(r, &u);
  HANDOFF_RETURN_IF_ERROR(store_.ListEvents(txn, r, static_cast<uint32_t>(r.remote_seq),
                                            r.seq - r.remote_seq, &u.events));
  for (const EventRecord& e : u.events) {
    if (e.event_type == "intent.checkpointed") pending.checkpointed = true;
  }
  pending.held_due_ms = due_ms;
  held_order_.emplace(due_ms, r.id);
  held_[r.id] = std::move(pending);
  return Status::OK();
}

Status Engine::EmitNow(Txn& txn, Batch& batch, const std::string& peer, std::string_view kind,
                       const std::function<void(MsgWriter&)>& body,
                       wire::PeerMessageBuilder::Body form, const storage::OutboxPayload* payload) {
  const std::string counter = storage::Store::OutLinkCounter(peer);
  HANDOFF_ASSIGN_OR_RETURN(uint64_t last, store_.GetLinkCounter(txn, counter));
  const uint64_t seq = last + 1;
  HANDOFF_RETURN_IF_ERROR(store_.SetLinkCounter(txn, counter, seq));
  return PutOutboxMessage(txn, batch, peer, seq, kind, body, form, payload);
}

Status Engine::PutOutboxMessage(Txn& txn, Batch& batch, const std::string& peer, uint64_t seq,
                                std::string_view kind, const std::function<void(MsgWriter&)>& body,
                                wire::PeerMessageBuilder::Body form,
                                const storage::OutboxPayload* payload) {
  wire::PeerMessageBuilder message(kind, options_.node_name, seq, form);
  body(message.w());
  HANDOFF_RETURN_IF_ERROR(
      store_.PutOutbox(txn, peer, seq, clock_.NowMs(), message.Finish(), payload));
  batch.emitted[peer] = seq;
  return Status::OK();
}

Result<bool> Engine::AcceptRemoteIntent(Txn& txn, Batch& batch, const std::string& peer,
                                        const IntentRecord& incoming, std::string_view payload,
                                        std::string_view checkpoint) {
  IntentRecord existing;
  Status found = Load(txn, incoming.id, &existing);
  if (found.ok()) return false;
  if (!found.IsNotFound()) return found;

  // Built in place in the turn's staging (Record stages it without a copy); should storing it
  // fail before Record, it is unstaged.
  IntentRecord& r = StageNew(incoming.id);
  r.intent_type = incoming.intent_type;
  r.from_agent = incoming.from_agent;
  r.to_agent = incoming.to_agent;
  r.correlation_id = incoming.correlation_id;
  r.parent_id = incoming.parent_id;
  r.replay_of = incoming.replay_of;
  r.approval = incoming.approval;  // a decision made before delivery travels with it
  r.origin_node = peer;
  r.target_node = options_.node_name;
  r.lease_ms = incoming.lease_ms != 0 ? incoming.lease_ms : options_.default_lease_ms;
  // The origin resolved the policy; this node delivers by it.
  r.deadline_ms = incoming.deadline_ms;
  r.max_attempts = incoming.max_attempts;
  r.retry_initial_ms =
      incoming.retry_initial_ms != 0 ? incoming.retry_initial_ms : options_.retry_initial_ms;
  r.retry_multiplier =
      incoming.retry_multiplier != 0 ? incoming.retry_multiplier : options_.retry_multiplier;
  r.retry_max_ms = incoming.retry_max_ms != 0 ? incoming.retry_max_ms : options_.retry_max_ms;
  r.status = IntentStatus::kSubmitted;
  r.created_at_ms = incoming.created_at_ms;
  Status stored = store_.PutBlob(txn, r.id, BlobKind::kPayload, payload);
  if (stored.ok() && !checkpoint.empty()) {
    stored = store_.PutBlob(txn, r.id, BlobKind::kCheckpoint, checkpoint);
    r.has_checkpoint = true;
  }
  if (stored.ok()) {
    MsgWriter details;
    details.BeginMap();
    details.Field("from_node", peer);
    details.EndMap();
    stored = Record(txn, r, "intent.received", "system", details.Release());
  }
  if (!stored.ok()) {
    Unstage(incoming.id);
    return stored;
  }
  ++batch.status_delta[static_cast<size_t>(IntentStatus::kSubmitted)];
  HANDOFF_RETURN_IF_ERROR(Enqueue(txn, r.to_agent, r.id));
  ready_.insert(r.to_agent);
  if (r.deadline_ms != 0) {
    HANDOFF_RETURN_IF_ERROR(ScheduleTimer(txn, storage::TimerKind::kDeadline, r, r.deadline_ms));
  }
  return true;
}

Status Engine::RejectRemoteIntent(Txn& txn, Batch& batch, const std::string& peer,
                                  const IntentId& id, const Status& why) {
  spdlog::error("refused intent {} forwarded by node {}: {}", id.ToString(), peer, why.ToString());
  wire::RemoteUpdate u;
  u.id = id;
  u.remote_seq = 1;  // the only event this node will ever send about it
  u.status = IntentStatus::kFailed;
  u.error =
      ErrorInfo{"rejected_by_node",
                "node " + options_.node_name + " refused the intent: " + why.message(), false};
  EventRecord e;
  e.id = id;
  e.seq = 1;
  e.event_type = "intent.rejected";
  e.status = IntentStatus::kFailed;
  e.at_ms = clock_.NowMs();
  e.node = options_.node_name;
  e.actor = "system";
  MsgWriter details;
  details.BeginMap();
  details.Field("code", CodeName(why.code()));
  details.Field("message", why.message());
  details.EndMap();
  e.details = details.Release();
  u.events.push_back(std::move(e));
  return Emit(txn, batch, peer, wire::peer_kind::kUpdate,
              [&](MsgWriter& w) { wire::WriteRemoteUpdate(w, u); });
}

Status Engine::ApplyRemoteUpdate(Txn& txn, Batch& batch, const std::string& peer,
                                 const wire::RemoteUpdate& u) {
  // Changed in place (Stage): every check that can refuse the update comes before the first
  // change, past which only a failing store can (and that fails the whole turn).
  Result<IntentRecord*> staged = Stage(txn, u.id);
  if (staged.status().IsNotFound()) {
    return Status::NotFound("an update for intent " + u.id.ToString() +
                            ", which this node does not have");
  }
  HANDOFF_RETURN_IF_ERROR(staged.status());
  IntentRecord& r = **staged;
  if (r.target_node != peer || r.origin_node != options_.node_name) {
    return Status::InvalidArgument("an update for intent " + u.id.ToString() +
                                   ", which this node did not forward to node " + peer);
  }
  if (u.remote_seq <= r.remote_seq) return Status::OK();  // already applied
  const uint64_t applied = r.remote_seq;
  if (IsTerminal(r.status)) {
    // Ended here first (canceled, say): the destination's later events do not change it.
    spdlog::debug("intent {} already {} here; {} from {} not applied", r.id.ToString(),
                  IntentStatusName(r.status), u.events.back().event_type, peer);
    r.remote_seq = u.remote_seq;
    Put(r);
    return Status::OK();
  }
  // Every change the events make must be one the lifecycle allows, as a local one must.
  size_t fresh = 0;
  IntentStatus walk = r.status;
  for (size_t i = 0; i <= u.events.size(); ++i) {
    const bool last = i == u.events.size();
    if (!last && u.events[i].seq != 0 && u.events[i].seq <= applied) continue;
    if (!last) ++fresh;
    const IntentStatus next = last ? u.status : u.events[i].status;
    if (next == walk) continue;
    Status allowed = CheckTransition(walk, next);
    if (!allowed.ok()) {
      return Status::InvalidArgument("an update for intent " + u.id.ToString() + ": " +
                                     allowed.message());
    }
    walk = next;
  }
  if (fresh > UINT32_MAX - r.seq) {
    return Status::InvalidArgument("an update for intent " + u.id.ToString() +
                                   " would number its events past 2^32");
  }
  r.remote_seq = u.remote_seq;
  if (!u.checkpoint.empty()) {
    HANDOFF_RETURN_IF_ERROR(store_.PutBlob(txn, r.id, BlobKind::kCheckpoint, u.checkpoint));
  }
  if (!u.result.empty())
    HANDOFF_RETURN_IF_ERROR(store_.PutBlob(txn, r.id, BlobKind::kResult, u.result));
  const IntentStatus from = r.status;
  r.status = u.status;
  r.delivery_attempt = u.delivery_attempt;
  r.waiting_reason = u.waiting_reason;
  r.error = u.error;
  r.last_error = u.last_error;
  if (u.approval) r.approval = u.approval;  // an update never erases a recorded decision
  r.has_checkpoint = u.has_checkpoint;
  r.updated_at_ms = clock_.NowMs();
  for (size_t i = 0; i < u.events.size(); ++i) {
    // As it happened there: its node, time, actor, details and the status it left; numbered
    // in this node's history. An event this node has (its seq there at or below the last
    // one applied) is not recorded twice.
    if (u.events[i].seq != 0 && u.events[i].seq <= applied) continue;
    EventRecord e = u.events[i];
    e.id = r.id;
    e.seq = ++r.seq;
    e.audit_seq = 0;
    if (i + 1 == u.events.size()) e.status = r.status;  // the last: the state it leaves
    HANDOFF_RETURN_IF_ERROR(WriteEvent(txn, e, &r.last_audit_seq));
  }
  Put(r);
  if (from != r.status) {
    --batch.status_delta[static_cast<size_t>(from)];
    ++batch.status_delta[static_cast<size_t>(r.status)];
    if (IsTerminal(r.status)) {
      batch.settled.push_back(r.id);
      HANDOFF_RETURN_IF_ERROR(ScheduleRetention(txn, r));
      HANDOFF_RETURN_IF_ERROR(OnEnded(txn, batch, r));
    }
  }
  return Status::OK();
}

Status Engine::ApplyRemoteControl(Txn& txn, Batch& batch, const std::string& peer,
                                  const IntentId& id, std::string_view action,
                                  std::string_view actor, std::string_view reason,
                                  std::string_view outcome) {
  Result<IntentRecord*> staged = Stage(txn, id);
  if (staged.status().IsNotFound()) {
    // Never forwarded here, or refused before it was stored (rejected_by_node): nothing to
    // stop either way; reported, so a peer's controls for intents it never sent are counted.
    return Status::NotFound("'" + std::string(action) + "' for intent " + id.ToString() +
                            ", which this node does not have");
  }
  HANDOFF_RETURN_IF_ERROR(staged.status());
  IntentRecord& r = **staged;
  if (r.origin_node != peer || r.target_node != options_.node_name) {
    return Status::InvalidArgument("'" + std::string(action) + "' for intent " + id.ToString() +
                                   ", which node " + peer + " did not forward here");
  }
  if (IsTerminal(r.status)) return Status::OK();
  if (action == "cancel") return Cancel(txn, batch, id, actor, reason).status();
  if (action == "timeout") return TimeOut(txn, batch, r);
  if (action == "approve" || action == "reject") {
    return Decide(txn, batch, id, action == "approve", outcome, reason, actor).status();
  }
  return Status::InvalidArgument("unknown control action '" + std::string(action) + "'");
}

}  // namespace handoff::node
