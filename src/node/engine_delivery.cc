// A delivery's life: taking an intent off its queue under a lease, the agent's calls on it
// (ack, heartbeat, checkpoint, complete, fail) checked against that lease, and what happens when
// the lease runs out or the push never left the node.

#include <spdlog/spdlog.h>

#include "base/time_format.h"
#include "node/engine.h"
#include "node/lifecycle.h"

namespace handoff::node {

Status Engine::CheckLease(const IntentRecord& r, uint32_t* attempt) const {
  if (IsRemote(r)) {
    return Status::Conflict("intent " + r.id.ToString() + " is delivered by node " + r.target_node +
                            "; agent calls go to that node's daemon");
  }
  if (*attempt == 0) *attempt = r.delivery_attempt;
  if (r.status == IntentStatus::kCanceled) {
    return Status::Cancelled("intent " + r.id.ToString() + " was canceled; stop working on it");
  }
  if (r.status == IntentStatus::kTimedOut) {
    return Status::TimedOut("intent " + r.id.ToString() + " passed its deadline (" +
                            FormatRfc3339(r.deadline_ms) + "); stop working on it");
  }
  if (IsTerminal(r.status)) {
    return Status::Conflict("intent " + r.id.ToString() + " has already ended as " +
                            std::string(IntentStatusName(r.status)));
  }
  if (*attempt != r.delivery_attempt) {
    return Status::Conflict("lease lost: intent " + r.id.ToString() +
                            " was delivered again (now attempt " +
                            std::to_string(r.delivery_attempt) + "); attempt " +
                            std::to_string(*attempt) + " no longer holds it");
  }
  if (!IsLeased(r.status)) {
    return Status::Conflict("lease lost: intent " + r.id.ToString() + " is " +
                            std::string(IntentStatusName(r.status)) +
                            ", not leased to an agent (its lease may have expired)");
  }
  return Status::OK();
}

void Engine::ArmLease(const IntentRecord& r) {
  leases_.Arm(r.id, r.delivery_attempt, clock_.NowMs() + r.lease_ms);
}

Result<const IntentRecord*> Engine::Ack(Txn& txn, Batch& batch, const IntentId& id,
                                        uint32_t attempt, bool start) {
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  IntentRecord& r = *staged;
  HANDOFF_RETURN_IF_ERROR(CheckLease(r, &attempt));
  if (r.status == IntentStatus::kDelivered) {
    HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kAcknowledged,
                                       "intent.acknowledged", r.to_agent, AttemptDetails(attempt)));
  }
  if (start && r.status == IntentStatus::kAcknowledged) {
    HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kInProgress,
                                       "intent.in_progress", r.to_agent, AttemptDetails(attempt)));
  }
  ArmLease(r);
  return staged;
}

Result<IntentRecord*> Engine::StageForWork(Txn& txn, Batch& batch, const IntentId& id,
                                           uint32_t* attempt) {
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * r, Stage(txn, id));
  HANDOFF_RETURN_IF_ERROR(CheckLease(*r, attempt));
  if (r->status == IntentStatus::kInProgress) return r;
  HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, *r, IntentStatus::kInProgress,
                                     "intent.in_progress", r->to_agent, AttemptDetails(*attempt)));
  return r;
}

Result<HeartbeatResult> Engine::Heartbeat(Txn& txn, Batch& batch, const IntentId& id,
                                          uint32_t attempt) {
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * r, StageForWork(txn, batch, id, &attempt));
  ArmLease(*r);
  return HeartbeatResult{r, clock_.NowMs() + r->lease_ms};
}

Result<const IntentRecord*> Engine::Checkpoint(Txn& txn, Batch& batch, const IntentId& id,
                                               uint32_t attempt, std::string_view state) {
  HANDOFF_RETURN_IF_ERROR(CheckSize("checkpoint", state.size()));
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, StageForWork(txn, batch, id, &attempt));
  IntentRecord& r = *staged;
  HANDOFF_RETURN_IF_ERROR(CheckEventRoom(r));  // before the checkpoint is stored or noted
  HANDOFF_RETURN_IF_ERROR(store_.PutBlob(txn, id, BlobKind::kCheckpoint, state));
  r.has_checkpoint = true;
  MsgWriter details;
  details.BeginMap();
  details.Field("attempt", attempt);
  details.Field("bytes", static_cast<uint64_t>(state.size()));
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(Record(txn, r, "intent.checkpointed", r.to_agent, details.Release()));
  ArmLease(r);
  return staged;
}

Status Engine::PrepareOutcome(Txn& txn, uint32_t attempt, IntentStatus ending,
                              const IntentRecord& r, bool* repeated) {
  const uint32_t asked = attempt == 0 ? r.delivery_attempt : attempt;
  // A resent outcome finds the intent as the first one left it: ended, or (a retryable
  // failure) waiting out its backoff.
  const bool backing_off = ending == IntentStatus::kFailed && r.status == IntentStatus::kWaiting &&
                           r.waiting_reason == "TIME";
  *repeated = (r.status == ending || backing_off) && asked == r.delivery_attempt;
  if (*repeated) return Status::OK();  // a resent request: the first one already counted
  // An outcome that arrives after the lease expired, before the intent went out again, still
  // counts: the work is done, and redelivering it would only repeat it.
  if (r.status == IntentStatus::kSubmitted && r.delivery_attempt > 0 &&
      asked == r.delivery_attempt) {
    return store_.Dequeue(txn, r.to_agent, r.id);
  }
  return CheckLease(r, &attempt);
}

Result<const IntentRecord*> Engine::Complete(Txn& txn, Batch& batch, const IntentId& id,
                                             uint32_t attempt, std::string_view result) {
  HANDOFF_RETURN_IF_ERROR(CheckSize("result", result.size()));
  // Changed in place (Stage): everything that can refuse the request is checked first
  // (PrepareOutcome, then Transition's own check before it changes anything).
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  IntentRecord& r = *staged;
  bool repeated = false;
  HANDOFF_RETURN_IF_ERROR(PrepareOutcome(txn, attempt, IntentStatus::kCompleted, r, &repeated));
  if (repeated) return staged;
  if (!result.empty()) HANDOFF_RETURN_IF_ERROR(store_.PutBlob(txn, id, BlobKind::kResult, result));
  HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kCompleted, "intent.completed",
                                     r.to_agent, AttemptDetails(r.delivery_attempt)));
  return staged;
}

Result<const IntentRecord*> Engine::Fail(Txn& txn, Batch& batch, const IntentId& id,
                                         uint32_t attempt, const ErrorInfo& error) {
  // Changed in place, checked first as Complete (AfterFailedAttempt checks before it changes).
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  bool repeated = false;
  HANDOFF_RETURN_IF_ERROR(PrepareOutcome(txn, attempt, IntentStatus::kFailed, *staged, &repeated));
  if (repeated) return staged;
  ErrorInfo e = error;
  if (e.code.empty()) e.code = "agent_error";
  HANDOFF_RETURN_IF_ERROR(AfterFailedAttempt(txn, batch, *staged, e));
  return staged;
}

Result<std::optional<DeliveredView>> Engine::DeliverNext(Txn& txn, Batch& batch,
                                                         const std::string& address) {
  while (true) {
    auto floor = queue_floor_.find(address);
    HANDOFF_ASSIGN_OR_RETURN(
        std::optional<IntentId> next,
        store_.FirstQueued(txn, address, floor != queue_floor_.end() ? &floor->second : nullptr));
    if (!next) {
      ready_.erase(address);
      return std::optional<DeliveredView>();
    }
    HANDOFF_RETURN_IF_ERROR(store_.Dequeue(txn, address, *next));
    queue_floor_.insert_or_assign(address, *next);
    // Changed in place (Stage): past the status check below nothing refuses the delivery.
    Result<IntentRecord*> staged = Stage(txn, *next);
    if (staged.status().IsNotFound() ||
        (staged.ok() && (*staged)->status != IntentStatus::kSubmitted)) {
      // A queue entry without a SUBMITTED intent behind it cannot be delivered; dropping it is
      // the repair. Not expected: every transition out of SUBMITTED dequeues.
      spdlog::warn("dropped stale queue entry for intent {} at {}", next->ToString(), address);
      continue;
    }
    HANDOFF_RETURN_IF_ERROR(staged.status());
    IntentRecord& r = **staged;
    if (r.deadline_ms != 0 && r.deadline_ms <= clock_.NowMs()) {
      // Never delivered after its deadline, even if its timer has not fired yet.
      HANDOFF_RETURN_IF_ERROR(Enqueue(txn, address, r.id));  // TimeOut dequeues it
      HANDOFF_RETURN_IF_ERROR(TimeOut(txn, batch, r));
      continue;
    }
    ++r.delivery_attempt;
    MsgWriter details;
    details.BeginMap();
    details.Field("attempt", r.delivery_attempt);
    details.Field("lease_ms", r.lease_ms);
    details.EndMap();
    HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kDelivered, "intent.delivered",
                                       "system", details.Release()));
    DeliveredView delivery{r, {}, {}};
    HANDOFF_RETURN_IF_ERROR(store_.GetBlobView(txn, r.id, BlobKind::kPayload, &delivery.payload));
    if (r.has_checkpoint) {
      HANDOFF_RETURN_IF_ERROR(
          store_.GetBlobView(txn, r.id, BlobKind::kCheckpoint, &delivery.checkpoint));
    }
    ArmLease(r);
    return std::optional<DeliveredView>(delivery);
  }
}

Status Engine::ReturnUndelivered(Txn& txn, Batch& batch, const IntentId& id, uint32_t attempt) {
  Result<IntentRecord*> staged = Stage(txn, id);
  if (staged.status().IsNotFound()) return Status::OK();
  HANDOFF_RETURN_IF_ERROR(staged.status());
  IntentRecord& r = **staged;
  if (r.status != IntentStatus::kDelivered || r.delivery_attempt != attempt) return Status::OK();
  HANDOFF_RETURN_IF_ERROR(CheckChange(r, IntentStatus::kSubmitted));
  --r.delivery_attempt;
  MsgWriter details;
  details.BeginMap();
  details.Field("attempt", attempt);
  details.Field("reason", "the agent connection was gone before the intent reached it");
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kSubmitted,
                                     "intent.delivery_failed", "system", details.Release()));
  HANDOFF_RETURN_IF_ERROR(Enqueue(txn, r.to_agent, r.id));
  ready_.insert(r.to_agent);
  return Status::OK();
}

Result<size_t> Engine::ExpireLeases(Txn& txn, Batch& batch, size_t max) {
  size_t expired = 0;
  for (const LeaseTable::Expired& lease : leases_.TakeExpired(clock_.NowMs(), max)) {
    Result<IntentRecord*> staged = Stage(txn, lease.id);
    if (staged.status().IsNotFound()) continue;
    HANDOFF_RETURN_IF_ERROR(staged.status());
    IntentRecord& r = **staged;
    if (!IsLeased(r.status) || r.delivery_attempt != lease.attempt) continue;  // stale entry
    if (r.max_attempts != 0 && r.delivery_attempt >= r.max_attempts) {
      HANDOFF_RETURN_IF_ERROR(
          AfterFailedAttempt(txn, batch, r,
                             ErrorInfo{"lease_expired",
                                       "the agent held attempt " + std::to_string(lease.attempt) +
                                           " past its lease without a heartbeat",
                                       true}));
      ++expired;
      continue;
    }
    HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kSubmitted,
                                       "intent.lease_expired", "system",
                                       AttemptDetails(lease.attempt)));
    HANDOFF_RETURN_IF_ERROR(Enqueue(txn, r.to_agent, r.id));
    ready_.insert(r.to_agent);
    spdlog::info("lease of intent {} (attempt {}) expired; it will be delivered again to {}",
                 r.id.ToString(), lease.attempt, r.to_agent);
    ++expired;
  }
  return expired;
}

}  // namespace handoff::node
