// Retention: ended intents are purged with their history once the node's retention has passed
// (durable timers, fired by FireTimers), or at once by an operator's purge. Dead letters wait.

#include "node/engine.h"

namespace handoff::node {

Status Engine::ScheduleRetention(Txn& txn, const IntentRecord& r) {
  if (options_.retention_ms == 0) return Status::OK();
  // A dead letter waits for an operator (replay schedules it); where another node sent it
  // from, the origin keeps the dead letter and this copy goes like any other.
  if (r.status == IntentStatus::kFailed && !IsReplica(r)) {
    return Status::OK();
  }
  return ScheduleTimer(txn, storage::TimerKind::kPurge, r, clock_.NowMs() + options_.retention_ms);
}

Status Engine::Erase(Txn& txn, Batch& batch, const IntentRecord& r) {
  HANDOFF_RETURN_IF_ERROR(store_.PurgeIntent(txn, r));
  if (!r.idempotency_key.empty()) {
    IntentId owner;
    std::string hash;
    Status known = store_.GetIdempotencyKey(txn, r.from_agent, r.idempotency_key, &owner, &hash);
    if (known.ok() && owner == r.id) {
      HANDOFF_RETURN_IF_ERROR(store_.DeleteIdempotencyKey(txn, r.from_agent, r.idempotency_key));
    }
  }
  --batch.status_delta[static_cast<size_t>(r.status)];
  ++batch.purged;
  const IntentId id = r.id;  // `r` may be the staged record itself
  unflushed_.erase(id);
  Staged& staged = staged_[id];
  staged.record.reset();
  staged.written = true;
  return Status::OK();
}

Status Engine::Purge(Txn& txn, Batch& batch, const IntentId& id) {
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* staged, Stage(txn, id));
  const IntentRecord& r = *staged;
  if (!IsTerminal(r.status)) {
    return Status::Conflict("intent " + id.ToString() + " is " +
                            std::string(IntentStatusName(r.status)) +
                            "; only an ended intent can be purged (cancel it first)");
  }
  return Erase(txn, batch, r);
}

}  // namespace handoff::node
