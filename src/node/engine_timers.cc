// Time in the lifecycle: retry backoff after a failed attempt, deadlines, and the durable timers
// that drive both (and idempotency-key expiry).

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/time_format.h"
#include "node/engine.h"

namespace handoff::node {
Status Engine::AfterFailedAttempt(Txn& txn, Batch& batch, IntentRecord& r, const ErrorInfo& error) {
  const uint32_t attempt = r.delivery_attempt;
  const bool exhausted = r.max_attempts != 0 && attempt >= r.max_attempts;
  const bool retry = error.retryable && !exhausted;
  HANDOFF_RETURN_IF_ERROR(CheckChange(r, retry ? IntentStatus::kWaiting : IntentStatus::kFailed));
  r.last_error = error;
  MsgWriter details;
  details.BeginMap();
  details.Field("attempt", attempt);
  details.Field("code", error.code);
  details.Field("message", error.message);
  details.Field("retryable", error.retryable);
  if (retry) {
    // Back off: initial * multiplier^(attempt - 1), capped.
    double delay = static_cast<double>(r.retry_initial_ms);
    for (uint32_t i = 1; i < attempt && delay < static_cast<double>(r.retry_max_ms); ++i) {
      delay *= r.retry_multiplier;
    }
    // Compared as doubles before the conversion: a delay past int64 must not be converted.
    const double cap = static_cast<double>(r.retry_max_ms);
    const int64_t delay_ms = delay < cap ? static_cast<int64_t>(delay) : r.retry_max_ms;
    const int64_t retry_at = clock_.NowMs() + delay_ms;
    details.Field("retry_in_ms", delay_ms);
    details.Field("retry_at", retry_at);
    details.EndMap();
    r.waiting_reason = "TIME";
    HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kWaiting,
                                       "intent.retry_scheduled", r.to_agent, details.Release()));
    return ScheduleTimer(txn, storage::TimerKind::kRetry, r, retry_at);
  }
  details.EndMap();
  if (error.retryable) {
    r.error = ErrorInfo{"delivery_attempts_exhausted",
                        "gave up after " + std::to_string(attempt) + " attempt(s); the last one " +
                            "failed with " + error.code + ": " + error.message,
                        false};
  } else {
    r.error = error;
  }
  return Transition(txn, batch, r, IntentStatus::kFailed, "intent.failed", r.to_agent,
                    details.Release());
}

Status Engine::ScheduleTimer(Txn& txn, storage::TimerKind kind, const IntentRecord& r, int64_t at) {
  const storage::TimerEntry timer{at, r.id, kind, r.delivery_attempt};
  HANDOFF_RETURN_IF_ERROR(store_.PutTimer(txn, timer));
  if (!next_timer_ || at < *next_timer_) next_timer_ = at;
  if (timer_floor_ && storage::TimerBefore(timer, *timer_floor_)) timer_floor_ = timer;
  return Status::OK();
}

Status Engine::TimeOut(Txn& txn, Batch& batch, IntentRecord& r) {
  HANDOFF_RETURN_IF_ERROR(CheckChange(r, IntentStatus::kTimedOut));
  if (r.status == IntentStatus::kSubmitted)
    HANDOFF_RETURN_IF_ERROR(store_.Dequeue(txn, r.to_agent, r.id));
  r.error = ErrorInfo{"deadline_exceeded",
                      "the deadline " + FormatRfc3339(r.deadline_ms) +
                          " passed while the intent was " + std::string(IntentStatusName(r.status)),
                      false};
  MsgWriter details;
  details.BeginMap();
  details.Field("deadline", r.deadline_ms);
  details.Field("previous_status", IntentStatusName(r.status));
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kTimedOut, "intent.timed_out",
                                     "system", details.Release()));
  if (IsRemote(r)) {
    HANDOFF_RETURN_IF_ERROR(
        Emit(txn, batch, r.target_node, wire::peer_kind::kControl, [&](MsgWriter& w) {
          w.Field("intent_id", r.id.ToString());
          w.Field("action", "timeout");
          w.Field("actor", "system");
        }));
  }
  return Status::OK();
}

Result<size_t> Engine::FireTimers(Txn& txn, Batch& batch, size_t max) {
  const int64_t now = clock_.NowMs();
  size_t fired = 0;
  while (fired < max) {
    HANDOFF_ASSIGN_OR_RETURN(std::optional<storage::TimerEntry> t,
                             store_.FirstTimer(txn, timer_floor_ ? &*timer_floor_ : nullptr));
    next_timer_.reset();
    if (!t) break;
    next_timer_ = t->fire_at_ms;
    if (t->fire_at_ms > now) break;
    HANDOFF_RETURN_IF_ERROR(store_.DeleteTimer(txn, *t));
    timer_floor_ = *t;
    ++fired;
    Result<IntentRecord*> staged = Stage(txn, t->id);
    if (staged.status().IsNotFound()) continue;
    HANDOFF_RETURN_IF_ERROR(staged.status());
    IntentRecord& r = **staged;
    if (t->kind == storage::TimerKind::kIdemExpiry) {
      IntentId owner;
      std::string hash;
      Status known = store_.GetIdempotencyKey(txn, r.from_agent, r.idempotency_key, &owner, &hash);
      if (known.ok() && owner == r.id) {
        HANDOFF_RETURN_IF_ERROR(store_.DeleteIdempotencyKey(txn, r.from_agent, r.idempotency_key));
      }
      continue;
    }
    if (t->kind == storage::TimerKind::kPurge) {
      if (!IsTerminal(r.status)) continue;
      if (WrittenThisTurn(r.id)) {
        // It ended (or changed) in this very turn, whose waiters are answered from what the
        // turn leaves: purged a turn later, they hear its outcome rather than not_found
        // (a retention shorter than a turn; a 1 ms one lost a sender's answers).
        HANDOFF_RETURN_IF_ERROR(ScheduleTimer(txn, storage::TimerKind::kPurge, r, now + 1));
        continue;
      }
      HANDOFF_RETURN_IF_ERROR(Erase(txn, batch, r));
      continue;
    }
    if (IsTerminal(r.status)) continue;  // ended some other way first
    if (t->kind == storage::TimerKind::kDeadline) {
      HANDOFF_RETURN_IF_ERROR(TimeOut(txn, batch, r));
    } else if (t->kind == storage::TimerKind::kRetry) {
      if (r.status != IntentStatus::kWaiting || r.waiting_reason != "TIME" ||
          r.delivery_attempt != t->attempt) {
        continue;  // no longer waiting for this backoff
      }
      HANDOFF_RETURN_IF_ERROR(Transition(txn, batch, r, IntentStatus::kSubmitted, "intent.retrying",
                                         "system", AttemptDetails(r.delivery_attempt + 1)));
      HANDOFF_RETURN_IF_ERROR(Enqueue(txn, r.to_agent, r.id));
      ready_.insert(r.to_agent);
    }
  }
  return fired;
}

}  // namespace handoff::node
