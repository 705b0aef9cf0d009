#include "node/engine.h"

#include <spdlog/spdlog.h>

#include "node/lifecycle.h"

namespace handoff::node {

std::string Engine::AttemptDetails(uint32_t attempt) {
  MsgWriter w;
  w.BeginMap();
  w.Field("attempt", attempt);
  w.EndMap();
  return w.Release();
}

Engine::Engine(storage::Store& store, const Clock& clock, EngineOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      routes_(options_.node_name, options_.routes) {}

Status Engine::CheckSize(std::string_view what, size_t size) const {
  if (size <= options_.max_payload_bytes) return Status::OK();
  return Status::InvalidArgument(
      std::string(what) + " is " + std::to_string(size) + " bytes encoded; the limit is " +
      std::to_string(options_.max_payload_bytes) + " (max_payload_bytes)");
}

Status Engine::Recover() {
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, store_.BeginRead());
  return Recover(txn);
}

Status Engine::Recover(const Txn& txn) {
  counts_.fill(0);
  leases_ = LeaseTable();
  ready_.clear();
  queue_floor_.clear();
  timer_floor_.reset();
  HANDOFF_ASSIGN_OR_RETURN(std::optional<storage::TimerEntry> first, store_.FirstTimer(txn));
  next_timer_.reset();
  if (first) next_timer_ = first->fire_at_ms;
  HANDOFF_ASSIGN_OR_RETURN(audit_seq_, store_.LastAuditSeq(txn));
  HANDOFF_ASSIGN_OR_RETURN(newest_id_, store_.LastIntentId(txn));
  HANDOFF_RETURN_IF_ERROR(store_.LastNodeEvent(txn, &node_event_seq_, &node_last_audit_seq_));
  HANDOFF_RETURN_IF_ERROR(LoadPaused(txn));
  held_.clear();
  held_order_.clear();
  const int64_t now = clock_.NowMs();
  std::vector<IntentRecord> unreported;
  HANDOFF_RETURN_IF_ERROR(store_.ScanIntents(txn, [&](const IntentRecord& r) {
    ++counts_[static_cast<size_t>(r.status)];
    if (IsRemote(r)) return true;  // its destination keeps its lease and queue
    if (IsLeased(r.status)) leases_.Arm(r.id, r.delivery_attempt, now + r.lease_ms);
    if (r.status == IntentStatus::kSubmitted) ready_.insert(r.to_agent);
    // A replica whose origin was not sent its last events had them held (EmitUpdates): they
    // go at the next turn. Only a held status can be left so (any other went at once).
    if (IsReplica(r) && IsLeased(r.status) && r.remote_seq < r.seq) unreported.push_back(r);
    return true;
  }));
  for (const IntentRecord& r : unreported) HANDOFF_RETURN_IF_ERROR(HoldFromStore(txn, r, now));
  if (!unreported.empty()) {
    spdlog::info(
        "{} update(s) for the origins of replicas were held when this node stopped; "
        "they are sent now",
        unreported.size());
  }
  return Status::OK();
}

std::optional<int64_t> Engine::NextTimer() const {
  std::optional<int64_t> next = next_timer_;
  if (!held_order_.empty()) {
    const int64_t due = held_order_.begin()->first;
    if (!next || due < *next) next = due;
  }
  return next;
}

bool Engine::TimerDue() const {
  const std::optional<int64_t> next = NextTimer();
  return next && *next <= clock_.NowMs();
}

Status Engine::Flush(Txn& txn, Batch& batch) {
  for (size_t i = 0; i < turn_events_.size(); ++i) batch.events[i] += turn_events_[i];
  turn_events_ = {};
  ReleaseHeld();
  // Updates first: writing one notes it on its record (remote_seq), which FlushRecords stores.
  HANDOFF_RETURN_IF_ERROR(EmitUpdates(txn, batch));
  return FlushRecords(txn);
}

Status Engine::FlushRecords(Txn& txn) {
  for (const IntentId& id : unflushed_) {
    const std::optional<IntentRecord>& record = staged_.at(id).record;
    if (record) HANDOFF_RETURN_IF_ERROR(store_.PutIntent(txn, *record));
  }
  unflushed_.clear();
  return Status::OK();
}

void Engine::Commit(const Batch& batch) {
  if (!unflushed_.empty() || !updates_.empty()) {
    // A caller committed without Flush: those records (or updates) are not in the store.
    // Continuing would answer clients with state that a restart forgets.
    spdlog::critical("{} intent record(s) and {} update(s) committed without Engine::Flush",
                     unflushed_.size(), updates_.size());
    std::abort();
  }
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += batch.status_delta[i];
  for (size_t i = 0; i < event_totals_.size(); ++i) event_totals_[i] += batch.events[i];
  for (auto& [id, staged] : staged_) {
    if (!staged.written) continue;  // staged to change, then left as it was
    if (staged.record) {
      cache_.Put(std::move(*staged.record));
    } else {
      cache_.Erase(id);
    }
  }
  staged_.clear();
}

Status Engine::Rollback() {
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, store_.BeginRead());
  return Rollback(txn);
}

Status Engine::Rollback(const Txn& view) {
  turn_events_ = {};
  staged_.clear();
  unflushed_.clear();
  updates_.clear();
  update_of_.clear();
  cache_.Clear();
  return Recover(view);
}

void Engine::ExpireLeaseNow(const IntentId& id) { leases_.ExpireNow(id); }

Status Engine::Enqueue(Txn& txn, const std::string& address, const IntentId& id) {
  auto floor = queue_floor_.find(address);
  if (floor != queue_floor_.end() && id < floor->second) floor->second = id;
  return store_.Enqueue(txn, address, id);
}

bool Engine::LeaseExpiryDue() const {
  auto next = leases_.NextExpiry();
  return next && *next <= clock_.NowMs();
}

Status Engine::WriteEvent(Txn& txn, EventRecord& e, uint64_t* chain) {
  e.audit_seq = ++audit_seq_;
  e.prev_audit_seq = *chain;
  HANDOFF_RETURN_IF_ERROR(store_.PutEvent(txn, e));
  *chain = e.audit_seq;
  return Status::OK();
}

Status Engine::Audit(const Txn& txn, uint64_t since, size_t limit,
                     std::vector<EventRecord>* out) const {
  return store_.ListAudit(txn, since, limit, out);
}

Result<const IntentRecord*> Engine::Kept(const IntentId& id) const {
  if (auto it = staged_.find(id); it != staged_.end()) {
    if (!it->second.record) return Status::NotFound("intent " + id.ToString() + " not found");
    return &*it->second.record;
  }
  return cache_.Find(id);
}

IntentRecord& Engine::StageNew(const IntentId& id) {
  Staged& staged = staged_[id];
  staged.record.emplace();
  staged.record->id = id;
  return *staged.record;
}

void Engine::Unstage(const IntentId& id) {
  // Until Put, `written` is what it was before StageNew: set only if the turn deleted the
  // record (one it had Put, StageNew is never asked for).
  Staged& staged = staged_.at(id);
  if (staged.written) {
    staged.record.reset();
  } else {
    staged_.erase(id);
  }
}

Result<IntentRecord*> Engine::Stage(const Txn& txn, const IntentId& id) {
  if (auto it = staged_.find(id); it != staged_.end()) {
    if (!it->second.record) return Status::NotFound("intent " + id.ToString() + " not found");
    return &*it->second.record;
  }
  // Copied from the cache, not moved: should the turn not Put it, the cache keeps it as is.
  const IntentRecord* cached = cache_.Find(id);
  auto [it, added] = staged_.try_emplace(id);
  std::optional<IntentRecord>& record = it->second.record;
  if (cached != nullptr) {
    record.emplace(*cached);
  } else {
    record.emplace();
    Status s = store_.GetIntent(txn, id, &*record);
    if (!s.ok()) {
      staged_.erase(it);
      return s;
    }
  }
  return &*record;
}

Status Engine::Load(const Txn& txn, const IntentId& id, IntentRecord* out) const {
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* kept, Kept(id));
  if (kept != nullptr) {
    *out = *kept;
    return Status::OK();
  }
  HANDOFF_RETURN_IF_ERROR(store_.GetIntent(txn, id, out));
  // Nothing this turn wrote (that would be staged), so the store returned committed state.
  cache_.Put(*out);
  return Status::OK();
}

void Engine::Put(const IntentRecord& r) {
  if (newest_id_ < r.id) newest_id_ = r.id;
  Staged& staged = staged_[r.id];
  if (!staged.record || &*staged.record != &r) staged.record = r;  // else staged in place
  staged.written = true;
  unflushed_.insert(r.id);
}

bool Engine::Count(std::string_view event_type, IntentStatus after) {
  static constexpr std::pair<std::string_view, Counted> kKinds[] = {
      {"intent.submitted", Counted::kSubmitted},
      {"intent.received", Counted::kReceived},
      {"intent.delivered", Counted::kDelivered},
      {"intent.lease_expired", Counted::kLeaseExpired},
      {"intent.delivery_failed", Counted::kDeliveryFailed},
      {"intent.retrying", Counted::kRetrying},
      {"intent.completed", Counted::kCompleted},
      {"intent.failed", Counted::kFailed},
      {"intent.canceled", Counted::kCanceled},
      {"intent.timed_out", Counted::kTimedOut},
      {"intent.rejected", Counted::kRejected},
  };
  for (const auto& [name, kind] : kKinds) {
    if (name != event_type) continue;
    ++turn_events_[static_cast<size_t>(kind)];
    const bool ending =
        kind == Counted::kFailed || kind == Counted::kTimedOut || kind == Counted::kRejected;
    if (ending && (after == IntentStatus::kFailed || after == IntentStatus::kTimedOut)) {
      ++turn_events_[static_cast<size_t>(Counted::kDeadLettered)];
      return true;
    }
    return false;
  }
  return false;
}

void Engine::LogEvent(const IntentRecord& r, std::string_view event_type, bool dead_letter) {
  if (dead_letter) {
    const ErrorInfo* why = r.error ? &*r.error : (r.last_error ? &*r.last_error : nullptr);
    spdlog::warn(
        "intent {} ({}, {} -> {}) is a dead letter: {} after {} attempt(s){}; `handoffctl "
        "replay {}` sends it again",
        r.id.ToText().view(), r.intent_type, r.from_agent, r.to_agent, IntentStatusName(r.status),
        r.delivery_attempt, why ? ": " + why->code + ": " + why->message : std::string(),
        r.id.ToText().view());
    return;
  }
  // Intents going back for another delivery: a line per period with the counts by cause (a
  // fleet of agents gone is one line every 10 s, not one per intent), and the latest.
  size_t cause;
  if (event_type == "intent.lease_expired") {
    cause = 0;
  } else if (event_type == "intent.retrying") {
    cause = 1;
  } else if (event_type == "intent.delivery_failed") {
    cause = 2;
  } else {
    return;
  }
  ++redeliveries_unlogged_[cause];
  const int64_t now = clock_.NowMs();
  if (now - redelivery_logged_ms_ < kRedeliveryLogPeriodMs) return;
  static constexpr const char* kWhy[] = {
      "its agent neither finished nor sent a heartbeat within its lease",
      "its agent failed it with a retryable error: delivered again after the backoff",
      "the agent it was pushed to had gone"};
  spdlog::info(
      "{} lease(s) expired, {} retryable failure(s), {} push(es) to vanished agents since the "
      "last report: delivered again; latest: intent {} for {} (attempt {}): {}",
      redeliveries_unlogged_[0], redeliveries_unlogged_[1], redeliveries_unlogged_[2],
      r.id.ToText().view(), r.to_agent, r.delivery_attempt, kWhy[cause]);
  redeliveries_unlogged_ = {};
  redelivery_logged_ms_ = now;
}

Status Engine::CheckEventRoom(const IntentRecord& r) {
  if (r.seq == UINT32_MAX) {
    // Events are numbered per intent in 32 bits: a wrap would overwrite the first ones.
    return Status::Conflict("intent " + r.id.ToString() + " has recorded " + std::to_string(r.seq) +
                            " events, the most an intent can");
  }
  return Status::OK();
}

Status Engine::CheckChange(const IntentRecord& r, IntentStatus to) {
  HANDOFF_RETURN_IF_ERROR(CheckTransition(r.status, to));
  return CheckEventRoom(r);
}

Status Engine::Record(Txn& txn, IntentRecord& r, std::string_view event_type,
                      std::string_view actor, std::string details) {
  HANDOFF_RETURN_IF_ERROR(CheckEventRoom(r));
  const int64_t now = clock_.NowMs();
  r.updated_at_ms = now;
  ++r.seq;
  // Built in a record kept for the purpose: its strings keep their capacity from one event to
  // the next, so an event allocates nothing here (two allocations each before).
  EventRecord& e = event_scratch_;
  e.id = r.id;
  e.seq = r.seq;
  e.event_type.assign(event_type);
  e.status = r.status;
  e.at_ms = now;
  e.node.assign(options_.node_name);
  e.actor.assign(actor);
  e.details = std::move(details);
  HANDOFF_RETURN_IF_ERROR(WriteEvent(txn, e, &r.last_audit_seq));
  LogEvent(r, e.event_type, Count(e.event_type, r.status));
  Put(r);
  if (!IsReplica(r)) return Status::OK();

  // The origin keeps the whole history: every event here goes back to it, in order, with the
  // state the last one leaves and any checkpoint or result stored (EmitUpdates).
  auto [at, added] = update_of_.try_emplace(r.id, updates_.size());
  if (added) {
    auto held = held_.find(r.id);
    if (held != held_.end()) {
      // Its held events go first, in this turn's update.
      held_order_.erase({*held->second.held_due_ms, r.id});
      updates_.push_back(std::move(held->second));
      held_.erase(held);
    } else {
      updates_.emplace_back();
      updates_.back().peer = r.origin_node;
    }
  }
  PendingUpdate& pending = updates_[at->second];
  wire::RemoteUpdate& u = pending.update;
  SetUpdateState(r, &u);
  if (event_type == "intent.checkpointed") pending.checkpointed = true;
  u.events.push_back(e);
  return Status::OK();
}

Status Engine::Transition(Txn& txn, Batch& batch, IntentRecord& r, IntentStatus to,
                          std::string_view event_type, std::string_view actor,
                          std::string details) {
  HANDOFF_RETURN_IF_ERROR(CheckChange(r, to));  // before the record changes: it may be staged
  const IntentStatus from = r.status;
  r.status = to;
  if (to != IntentStatus::kWaiting) r.waiting_reason.clear();
  HANDOFF_RETURN_IF_ERROR(Record(txn, r, event_type, actor, std::move(details)));
  --batch.status_delta[static_cast<size_t>(from)];
  ++batch.status_delta[static_cast<size_t>(to)];
  if (IsLeased(from) && !IsLeased(to)) {
    leases_.Disarm(r.id);
    batch.released.push_back(r.id);
  }
  if (IsTerminal(to)) {
    batch.settled.push_back(r.id);
    HANDOFF_RETURN_IF_ERROR(ScheduleRetention(txn, r));
    HANDOFF_RETURN_IF_ERROR(OnEnded(txn, batch, r));
  }
  return Status::OK();
}

}  // namespace handoff::node
