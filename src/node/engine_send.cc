// The sender's half of the Engine: a send (validated, stored, queued here or forwarded to the
// node that hosts its address) and a cancel.

#include "base/hash.h"
#include "base/names.h"
#include "base/time_format.h"
#include "node/engine.h"
#include "node/lifecycle.h"

namespace handoff::node {

Result<SendResult> Engine::Send(Txn& txn, Batch& batch, const SendParams& p) {
  HANDOFF_RETURN_IF_ERROR(ValidateIntentType(p.intent_type));
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(p.to_agent));
  std::string from =
      p.from_agent.empty() ? "agent://" + options_.node_name + "/local/anonymous" : p.from_agent;
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(from));
  HANDOFF_RETURN_IF_ERROR(CheckSize("payload", p.payload.size()));
  HANDOFF_RETURN_IF_ERROR(CheckIdField("correlation_id", p.correlation_id));
  if (!p.parent_id.empty()) HANDOFF_RETURN_IF_ERROR(IntentId::Parse(p.parent_id).status());
  if (!p.reply_to.empty()) HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(p.reply_to));
  int64_t lease_ms = p.lease_ms == 0 ? options_.default_lease_ms : p.lease_ms;
  HANDOFF_RETURN_IF_ERROR(CheckLeaseMs(lease_ms));

  const int64_t now = clock_.NowMs();
  if (p.deadline_ms != 0) {
    HANDOFF_RETURN_IF_ERROR(CheckTimestamp("deadline", p.deadline_ms));
    if (p.deadline_ms <= now) {
      return Status::InvalidArgument("the deadline " + FormatRfc3339(p.deadline_ms) +
                                     " has already passed");
    }
  }
  HANDOFF_RETURN_IF_ERROR(
      CheckRetryPolicy(p.max_attempts, p.retry_initial_ms, p.retry_multiplier, p.retry_max_ms));
  if (p.approval) HANDOFF_RETURN_IF_ERROR(CheckApproval(*p.approval));
  std::string request_hash;
  if (!p.idempotency_key.empty()) {
    HANDOFF_RETURN_IF_ERROR(CheckIdField("idempotency_key", p.idempotency_key));
    // The same sender repeating the same key: the same request, or a mistake.
    request_hash = ContentHash({p.intent_type, p.to_agent, p.payload});
    IntentId first;
    std::string first_hash;
    Status known = store_.GetIdempotencyKey(txn, from, p.idempotency_key, &first, &first_hash);
    if (known.ok()) {
      if (first_hash != request_hash) {
        return Status::Conflict("idempotency key '" + p.idempotency_key + "' of " + from +
                                " was already used for a different request (intent " +
                                first.ToString() + ")");
      }
      HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* existing, Stage(txn, first));
      return SendResult{existing, false};
    }
    if (!known.IsNotFound()) return known;
  }
  const IntentId id = p.intent_id ? *p.intent_id : NewIntentId(now);
  if (id.IsZero()) return Status::InvalidArgument("intent_id must not be all zeros");

  // An id past every one this node has is new (clients make time-ordered ids, so a send's
  // usually is): no lookup, which cost 2% of a round trip.
  if (!(newest_id_ < id)) {
    Result<IntentRecord*> existing = Stage(txn, id);
    if (existing.ok()) {
      const IntentRecord& e = **existing;
      std::string_view payload;
      HANDOFF_RETURN_IF_ERROR(store_.GetBlobView(txn, id, BlobKind::kPayload, &payload));
      if (e.intent_type != p.intent_type || e.to_agent != p.to_agent || e.from_agent != from ||
          payload != p.payload) {
        return Status::AlreadyExists("intent " + id.ToString() +
                                     " already exists with different content");
      }
      return SendResult{&e, false};
    }
    if (!existing.status().IsNotFound()) return existing.status();
  }

  // Built in place, in the turn's staging: Record then stages it without a copy.
  IntentRecord& r = StageNew(id);
  r.intent_type = p.intent_type;
  r.from_agent = std::move(from);
  r.to_agent = p.to_agent;
  r.correlation_id = p.correlation_id;
  r.parent_id = p.parent_id;
  r.origin_node = options_.node_name;
  r.target_node = routes_.NodeFor(r.to_agent);
  r.lease_ms = lease_ms;
  r.deadline_ms = p.deadline_ms;
  r.idempotency_key = p.idempotency_key;
  r.reply_to = p.reply_to;
  r.replay_of = p.replay_of;
  r.max_attempts = p.max_attempts != 0 ? p.max_attempts : options_.max_attempts;
  r.retry_initial_ms = p.retry_initial_ms != 0 ? p.retry_initial_ms : options_.retry_initial_ms;
  r.retry_multiplier = p.retry_multiplier != 0 ? p.retry_multiplier : options_.retry_multiplier;
  r.retry_max_ms = p.retry_max_ms != 0 ? p.retry_max_ms : options_.retry_max_ms;
  r.status = IntentStatus::kCreated;
  r.created_at_ms = now;
  ++batch.status_delta[static_cast<size_t>(IntentStatus::kCreated)];

  std::string created_details;
  if (!r.replay_of.empty()) {
    MsgWriter d;
    d.BeginMap();
    d.Field("replay_of", r.replay_of);
    d.EndMap();
    created_details = d.Release();
  }
  Status stored = store_.PutBlob(txn, r.id, BlobKind::kPayload, p.payload);
  if (stored.ok())
    stored = Record(txn, r, "intent.created", r.from_agent, std::move(created_details));
  if (!stored.ok()) {
    Unstage(id);
    --batch.status_delta[static_cast<size_t>(IntentStatus::kCreated)];
    return stored;
  }
  HANDOFF_RETURN_IF_ERROR(
      Transition(txn, batch, r, IntentStatus::kSubmitted, "intent.submitted", r.from_agent, {}));
  if (r.deadline_ms != 0) {
    HANDOFF_RETURN_IF_ERROR(ScheduleTimer(txn, storage::TimerKind::kDeadline, r, r.deadline_ms));
  }
  if (!r.idempotency_key.empty()) {
    HANDOFF_RETURN_IF_ERROR(
        store_.PutIdempotencyKey(txn, r.from_agent, r.idempotency_key, r.id, request_hash));
    HANDOFF_RETURN_IF_ERROR(
        ScheduleTimer(txn, storage::TimerKind::kIdemExpiry, r, now + options_.idempotency_ttl_ms));
  }
  if (p.approval) {
    // Held here, before any delivery, until a human decides.
    r.approval = *p.approval;
    r.approval->requested_by = r.from_agent;
    r.approval->requested_at_ms = now;
    r.approval->mid_work = false;
    r.waiting_reason = "HUMAN";
    MsgWriter details;
    details.BeginMap();
    details.Field("question", r.approval->question);
    details.EndMap();
    HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kWaiting,
                                       "intent.approval_requested", r.from_agent,
                                       details.Release()));
    return SendResult{&r, true};
  }
  HANDOFF_RETURN_IF_ERROR(Dispatch(txn, batch, r, p.payload));
  return SendResult{&r, true};
}

Status Engine::Dispatch(Txn& txn, Batch& batch, IntentRecord& r, std::string_view payload) {
  if (IsRemote(r)) {
    // Stored here first (the send is durable now), then forwarded through the outbox,
    // compact (a link sends it as a map to a peer that does not read that). The payload is
    // stored once, as the intent's blob: the message holds a nil in its place, and the link
    // reads it in when it sends the message (storage::OutboxPayload).
    storage::OutboxPayload without{r.id, 0};
    HANDOFF_RETURN_IF_ERROR(Emit(
        txn, batch, r.target_node, wire::peer_kind::kIntent,
        [&](MsgWriter& w) { without.offset = wire::WriteCompactIntent(w, r, {}, {}); },
        wire::PeerMessageBuilder::Body::kArray, payload.empty() ? nullptr : &without));
    if (!payload.empty()) {
      // The record names the message, for a purge while it waits (Store::PurgeIntent).
      r.forward_seq = batch.emitted.at(r.target_node);
      Put(r);
    }
    return Status::OK();
  }
  HANDOFF_RETURN_IF_ERROR(Enqueue(txn, r.to_agent, r.id));
  ready_.insert(r.to_agent);
  return Status::OK();
}

Result<const IntentRecord*> Engine::Cancel(Txn& txn, Batch& batch, const IntentId& id,
                                           std::string_view actor, std::string_view reason) {
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  IntentRecord& r = *staged;
  if (IsTerminal(r.status)) {
    return Status::Conflict("intent " + id.ToString() + " has already ended as " +
                            std::string(IntentStatusName(r.status)) + "; it cannot be canceled");
  }
  HANDOFF_RETURN_IF_ERROR(CheckChange(r, IntentStatus::kCanceled));
  if (r.status == IntentStatus::kSubmitted)
    HANDOFF_RETURN_IF_ERROR(store_.Dequeue(txn, r.to_agent, id));
  MsgWriter details;
  details.BeginMap();
  if (!reason.empty()) details.Field("reason", reason);
  details.Field("previous_status", IntentStatusName(r.status));
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kCanceled, "intent.canceled",
                                     actor.empty() ? "operator" : actor, details.Release()));
  if (IsRemote(r)) {
    // Canceled here at once (the origin decides); the destination stops its agent.
    HANDOFF_RETURN_IF_ERROR(
        Emit(txn, batch, r.target_node, wire::peer_kind::kControl, [&](MsgWriter& w) {
          w.Field("intent_id", r.id.ToString());
          w.Field("action", "cancel");
          w.Field("actor", actor.empty() ? "operator" : actor);
          w.Field("reason", reason);
        }));
  }
  return staged;
}

}  // namespace handoff::node
