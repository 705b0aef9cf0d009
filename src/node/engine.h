// Engine: the intent lifecycle over the store; the logic of a node without its sockets.
//
// Every mutating call runs inside a write transaction the caller owns and records what must
// happen once that transaction is durable in a Batch (intents that ended, leases released,
// status counts). The caller commits many calls at once (group commit), then hands the Batch to
// Commit(); if the commit fails it calls Rollback() instead. Lease expiries and the set of
// addresses with queued work are hints kept in memory and checked against the store before use,
// so calls may update them at once. Time comes from the injected Clock, so tests drive leases
// with a ManualClock.
//
// Agents name the delivery they work on by `attempt` (the intent's delivery_attempt when it was
// pushed to them). A call for an older attempt is refused as "lease lost": the intent has been
// delivered again since. attempt 0 means "the current one", for tools that do not track it.
//
// Thread safety: none. One loop thread owns the Engine and the write transaction.

#ifndef HANDOFF_NODE_ENGINE_H_
#define HANDOFF_NODE_ENGINE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/intent_id.h"
#include "base/records.h"
#include "handoff/status.h"
#include "node/lease_table.h"
#include "node/limits.h"
#include "node/options.h"
#include "node/record_cache.h"
#include "node/routes.h"
#include "storage/store.h"
#include "wire/peer_protocol.h"

namespace handoff::node {

using storage::BlobKind;
using storage::Txn;

struct EngineOptions {
  // This node's name, recorded in every event. Required.
  std::string node_name;
  // Lease of an intent whose sender set none. Default: 30 s.
  int64_t default_lease_ms = 30'000;
  // Largest accepted payload, checkpoint or result, in encoded bytes. Default: 1 MiB.
  uint64_t max_payload_bytes = 1 << 20;
  // Which addresses other nodes host. Default: none (every address is local).
  std::vector<RouteOptions> routes;
  // Retry policy of intents whose sender set none: at most `max_attempts` deliveries (lease
  // expiries included; 0: unlimited), and after a retryable failure a wait of retry_initial,
  // multiplied by retry_multiplier after each further failure, capped at retry_max.
  // Defaults: 5, 1 s, 2.0, 60 s.
  uint32_t max_attempts = 5;
  int64_t retry_initial_ms = 1000;
  double retry_multiplier = 2.0;
  int64_t retry_max_ms = 60'000;
  // How long an idempotency key is remembered. Default: 24 h.
  int64_t idempotency_ttl_ms = 24LL * 3600 * 1000;
  // How long an ended intent and its history are kept before they are deleted; 0: forever.
  // A dead letter (FAILED, where it was sent) is kept until it is replayed, then this long.
  // Default: 7 days.
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;
  // How long a replica's update that only says it was delivered or started waits for the
  // next change of the intent, to go with it (NodeOptions::update_delay_ms, whose default is
  // kDefaultUpdateDelayMs). Default: 0, every update at the end of its turn.
  int64_t update_delay_ms = 0;
};

// Decoded intent records kept in memory (about 1 KiB each).
inline constexpr size_t kRecordCacheCapacity = 16384;

// A send request after the wire layer decoded it; the Engine validates the rest.
struct SendParams {
  std::optional<IntentId> intent_id;  // chosen by the client, making retries idempotent
  std::string intent_type;
  std::string from_agent;  // empty: agent://<node>/local/anonymous
  std::string to_agent;
  std::string payload;  // one encoded msgpack map
  std::string correlation_id;
  std::string parent_id;
  int64_t lease_ms = 0;     // 0: the node default
  int64_t deadline_ms = 0;  // absolute Unix ms; 0: none
  // With from_agent, names the request: a send that repeats it returns the first intent.
  std::string idempotency_key;
  // An address that gets an intent.reply.v1 with the outcome when this intent ends.
  std::string reply_to;
  // Set by Replay: the ended intent this one repeats.
  std::string replay_of;
  // Set to hold the intent for a human decision before it is delivered (question, outcomes).
  std::optional<Approval> approval;
  // Retry policy; 0 for any of them: the node default.
  uint32_t max_attempts = 0;
  int64_t retry_initial_ms = 0;
  double retry_multiplier = 0;
  int64_t retry_max_ms = 0;
};

struct SendResult {
  // The intent as the turn staged it: valid until the turn commits or fails (copy what must
  // outlive that).
  const IntentRecord* record = nullptr;
  bool created = false;  // false: an earlier send with the same intent id already stored it
};

// An intent with its blobs (each empty when absent).
struct IntentView {
  IntentRecord record;
  std::string payload;
  std::string checkpoint;
  std::string result;
};

// An intent DeliverNext handed out: its record as the turn staged it and its blobs in the
// transaction. Valid until the transaction or the Engine changes: whatever must outlive that
// copies it (Copy).
struct DeliveredView {
  const IntentRecord& record;
  std::string_view payload;
  std::string_view checkpoint;  // empty when it has none
  IntentView Copy() const {
    return IntentView{record, std::string(payload), std::string(checkpoint), {}};
  }
};

struct ListFilter {
  std::optional<IntentStatus> status;
  std::string to_agent;
  std::string from_agent;
  size_t limit = 100;
};

struct HeartbeatResult {
  const IntentRecord* record = nullptr;  // staged by the turn: valid until it commits or fails
  int64_t lease_expires_at_ms = 0;
};

// Effects of a batch that may only take hold once it is committed.
// Events recorded on this node, by the kinds the metrics count (handoff_intents_*_total).
enum class Counted : uint8_t {
  kSubmitted,       // intent.submitted: a local send
  kReceived,        // intent.received: a forwarded intent stored here
  kDelivered,       // intent.delivered
  kLeaseExpired,    // intent.lease_expired: redelivered, the lease ran out
  kDeliveryFailed,  // intent.delivery_failed: redelivered, the connection was lost
  kRetrying,        // intent.retrying: redelivered after a retryable failure
  kCompleted,       // intent.completed
  kFailed,          // intent.failed
  kCanceled,        // intent.canceled
  kTimedOut,        // intent.timed_out
  kRejected,        // intent.rejected
  kDeadLettered,    // ended FAILED or TIMED_OUT: a dead letter
  kCount
};
using EventCounts = std::array<uint64_t, static_cast<size_t>(Counted::kCount)>;

struct Batch {
  std::array<int64_t, kIntentStatusCount> status_delta{};
  EventCounts events{};                     // recorded by the batch's turns
  std::vector<IntentId> settled;            // reached a terminal status
  std::vector<IntentId> released;           // no longer leased to the agent that held it
  std::map<std::string, uint64_t> emitted;  // peer -> last link seq written to its outbox
  uint64_t purged = 0;                      // ended intents deleted (retention or purge)
};

class Engine {
 public:
  // `store` and `clock` must outlive the Engine.
  Engine(storage::Store& store, const Clock& clock, EngineOptions options);

  // Rebuilds the in-memory state from the store: status counts, leases (re-armed for a full
  // lease from now), addresses with queued work. Call once before anything else.
  Status Recover();
  // The same, reading through `txn` (a view with the writes not yet in LMDB on top).
  Status Recover(const Txn& txn);

  // Writes the intent records this turn changed, each once however many transitions it went
  // through, and the updates for the origins of replicas, one per intent however many events
  // it recorded. Call after the turn's last change, before committing the transaction.
  Status Flush(Txn& txn, Batch& batch);
  // Applies a committed batch's effects to the in-memory state. The turn must be flushed.
  void Commit(const Batch& batch);
  // After a batch failed to commit: rebuilds the in-memory state from `view` (the store with
  // the durable batches not yet in LMDB on top), dropping whatever the batch's calls changed
  // in memory.
  Status Rollback(const Txn& view);
  // The same, reading the store alone (nothing durable is waiting outside LMDB).
  Status Rollback();
  // Makes the lease of `id` expire at the next ExpireLeases (its connection is gone).
  void ExpireLeaseNow(const IntentId& id);

  // --- Writes: each inside `txn`, effects into `batch`. ---

  Result<SendResult> Send(Txn& txn, Batch& batch, const SendParams& params);
  //
  // The writes below that return a record return the one this turn staged and changed in place
  // (Engine::Stage): valid until the turn commits or fails (Commit, Rollback).
  Result<const IntentRecord*> Cancel(Txn& txn, Batch& batch, const IntentId& id,
                                     std::string_view actor, std::string_view reason);
  // An agent working on the intent asks a human (WAITING, HUMAN). Its lease ends; its
  // checkpoint stays; the decision sends the intent back to an agent, decision attached.
  Result<const IntentRecord*> RequestApproval(Txn& txn, Batch& batch, const IntentId& id,
                                              uint32_t attempt, const Approval& question);
  // A human decides an intent WAITING for approval. Before delivery: approve delivers it,
  // reject cancels it. Mid-work: either decision delivers it again with the decision. For an
  // intent another node delivers, the decision is recorded here and sent there. `outcome`
  // must name one of the offered outcomes when there are any. A second decision is refused.
  Result<const IntentRecord*> Decide(Txn& txn, Batch& batch, const IntentId& id, bool approve,
                                     std::string_view outcome, std::string_view comment,
                                     std::string_view actor);
  // Sends a new intent with an ended one's type, addresses, payload, correlation id and retry
  // policy, linked both ways (replay_of on the new one, intent.replayed on the old one).
  Result<SendResult> Replay(Txn& txn, Batch& batch, const IntentId& id, std::string_view actor);
  // DELIVERED -> ACKNOWLEDGED, and on to IN_PROGRESS if `start`.
  Result<const IntentRecord*> Ack(Txn& txn, Batch& batch, const IntentId& id, uint32_t attempt,
                                  bool start);
  // Extends the lease; the first heartbeat moves the intent to IN_PROGRESS. Cancelled if the
  // intent was cancelled, Conflict if the lease was lost.
  Result<HeartbeatResult> Heartbeat(Txn& txn, Batch& batch, const IntentId& id, uint32_t attempt);
  // Stores `state` (encoded msgpack) as the latest checkpoint and extends the lease.
  Result<const IntentRecord*> Checkpoint(Txn& txn, Batch& batch, const IntentId& id,
                                         uint32_t attempt, std::string_view state);
  // Stores the result (encoded msgpack, may be empty for none) and completes the intent.
  // Repeating a successful complete for the same attempt is a no-op.
  Result<const IntentRecord*> Complete(Txn& txn, Batch& batch, const IntentId& id, uint32_t attempt,
                                       std::string_view result);
  Result<const IntentRecord*> Fail(Txn& txn, Batch& batch, const IntentId& id, uint32_t attempt,
                                   const ErrorInfo& error);

  // Takes the oldest intent queued for `address` and marks it DELIVERED under a new lease.
  // nullopt when the queue is empty.
  Result<std::optional<DeliveredView>> DeliverNext(Txn& txn, Batch& batch,
                                                   const std::string& address);
  // Returns a delivery that never left this node (its connection was gone when the push was
  // sent) to the queue, without counting the attempt: nobody received it. No-op if the intent
  // has moved on since.
  Status ReturnUndelivered(Txn& txn, Batch& batch, const IntentId& id, uint32_t attempt);
  // Returns every lease that expired by now (at most `max`) to the queue, or fails the intent
  // if it has used up its attempts.
  Result<size_t> ExpireLeases(Txn& txn, Batch& batch, size_t max);
  // Deletes an ended intent and its history now (an operator's purge); Conflict while it lives.
  Status Purge(Txn& txn, Batch& batch, const IntentId& id);
  // Fires every timer due by now (at most `max`): deadlines time intents out, ended backoffs
  // send them out again, ended retentions purge.
  Result<size_t> FireTimers(Txn& txn, Batch& batch, size_t max);

  // --- From peers. Each applies one message of an in-order link exactly once. ---

  // A peer forwarded an intent for a local agent: store it (same id) and queue it. False if it
  // was already here (a retransmission). The caller has validated it (PeerService::CheckIntent).
  Result<bool> AcceptRemoteIntent(Txn& txn, Batch& batch, const std::string& peer,
                                  const IntentRecord& incoming, std::string_view payload,
                                  std::string_view checkpoint);
  // This node cannot take an intent a peer forwarded (`why`): tells the origin, whose copy then
  // fails with code "rejected_by_node". Nothing is stored here but the message.
  Status RejectRemoteIntent(Txn& txn, Batch& batch, const std::string& peer, const IntentId& id,
                            const Status& why);
  // The destination of an intent forwarded from here reports events: append them to the
  // history here and mirror the status, each change checked against the lifecycle table.
  // Updates already applied (by remote_seq) are skipped. NotFound or InvalidArgument, with
  // nothing changed, for an intent this node did not forward to `peer` or a change the table
  // refuses.
  Status ApplyRemoteUpdate(Txn& txn, Batch& batch, const std::string& peer,
                           const wire::RemoteUpdate& update);
  // The origin ended or decided an intent this node delivers: action "cancel", "timeout",
  // "approve" or "reject" (with `outcome`, and the comment as `reason`). InvalidArgument, with
  // nothing changed, unless `peer` forwarded the intent here.
  Status ApplyRemoteControl(Txn& txn, Batch& batch, const std::string& peer, const IntentId& id,
                            std::string_view action, std::string_view actor,
                            std::string_view reason, std::string_view outcome = {});

  // --- The kill switch: paused addresses (engine_pause.cc) ---

  struct PauseInfo {
    std::string reason;
    std::string actor;
    int64_t at_ms = 0;
    std::string from_node;  // the peer that forwarded it; empty when asked here
  };
  // Stops deliveries to `address` until Resume: its intents are still accepted and queue
  // (SUBMITTED); intents already delivered finish or expire as usual. Durable, and recorded in
  // the audit trail. An address routed to a peer is paused there: the pause is forwarded (and
  // recorded here) and the peer's name returned; "" for a local address. *changed is false when
  // it was paused already (the first pause's reason stays) or, for Resume, not paused.
  Result<std::string> Pause(Txn& txn, Batch& batch, const std::string& address,
                            std::string_view actor, std::string_view reason, bool* changed);
  Result<std::string> Resume(Txn& txn, Batch& batch, const std::string& address,
                             std::string_view actor, bool* changed);
  // A pause or resume `peer` forwarded. InvalidArgument, with nothing changed, unless this
  // node hosts the address.
  Status ApplyRemotePause(Txn& txn, Batch& batch, const std::string& peer,
                          const std::string& address, bool pause, std::string_view actor,
                          std::string_view reason);
  bool IsPaused(const std::string& address) const { return paused_.count(address) != 0; }
  // How many intents wait in `address`'s queue, counting at most `cap`.
  Result<uint64_t> CountQueued(const Txn& txn, std::string_view address, uint64_t cap) const {
    return store_.CountQueued(txn, address, cap);
  }
  const std::map<std::string, PauseInfo>& paused() const { return paused_; }

  // --- Reads ---

  Status Get(const Txn& txn, const IntentId& id, IntentView* out) const;
  // The same without copying, for a reader that is done with it before the Engine or `txn`
  // changes (a wait's answer): the record in the turn's or the cache's keeping, and its blobs
  // in the transaction's.
  struct Peeked {
    const IntentRecord& record() const { return owned ? *owned : *borrowed; }
    const IntentRecord* borrowed = nullptr;
    std::optional<IntentRecord> owned;  // read from the store: neither kept it
    std::string_view payload, checkpoint, result;
  };
  Result<Peeked> Peek(const Txn& txn, const IntentId& id, Blobs blobs = Blobs::kAll) const;
  // The blobs of `out->record` (loaded by GetRecord) into `out`; those not wanted stay empty.
  Status ReadBlobs(const Txn& txn, IntentView* out, Blobs blobs = Blobs::kAll) const;
  // The record alone, without reading its blobs.
  Status GetRecord(const Txn& txn, const IntentId& id, IntentRecord* out) const {
    return Load(txn, id, out);
  }
  Status Events(const Txn& txn, const IntentId& id, uint32_t since, size_t limit,
                std::vector<EventRecord>* out) const;
  // Flushes first when `txn` writes, so a list sees this turn's own changes.
  Status List(Txn& txn, const ListFilter& filter, std::vector<IntentRecord>* out);
  // The node-wide trail: events with audit seq > `since`, in the order they were recorded.
  // Each event's audit_seq says its place.
  Status Audit(const Txn& txn, uint64_t since, size_t limit, std::vector<EventRecord>* out) const;

  // InvalidArgument if an encoded payload, checkpoint or result is over max_payload_bytes.
  Status CheckSize(std::string_view what, size_t size) const;
  // The node that hosts `address` by this node's routes; empty when it is this one.
  std::string NodeFor(std::string_view address) const { return routes_.NodeFor(address); }

  // --- In-memory state ---

  std::optional<int64_t> NextLeaseExpiry() const { return leases_.NextExpiry(); }
  bool LeaseExpiryDue() const;
  // The earliest stored timer or held update (a hint), and whether one is due.
  std::optional<int64_t> NextTimer() const;
  bool TimerDue() const;
  // Updates held for a later change (update_delay), not yet in the outbox.
  size_t held_updates() const { return held_.size(); }
  // Events recorded since start, by kind, as committed batches counted them.
  const EventCounts& event_totals() const { return event_totals_; }
  // Addresses that may have queued intents (a hint: DeliverNext clears a false one).
  const std::set<std::string>& ready_addresses() const { return ready_; }
  const std::array<int64_t, kIntentStatusCount>& status_counts() const { return counts_; }
  size_t lease_count() const { return leases_.size(); }
  const EngineOptions& options() const { return options_; }
  const Clock& clock() const { return clock_; }

 private:
  // The details of an event that names only the attempt: {"attempt": N}.
  static std::string AttemptDetails(uint32_t attempt);
  // Stores an event as the next in the node-wide audit trail, chained after `*chain` (the
  // audit seq of its intent's latest event: IntentRecord::last_audit_seq, or the node's own),
  // which it then becomes.
  Status WriteEvent(Txn& txn, EventRecord& e, uint64_t* chain);
  // Loads an intent: this turn's staged record, else the cache, else the store; NotFound with
  // the id in the message.
  Status Load(const Txn& txn, const IntentId& id, IntentRecord* out) const;
  // The record as this turn staged it or the cache keeps it; null when neither holds it (the
  // store may), NotFound when this turn deleted it.
  Result<const IntentRecord*> Kept(const IntentId& id) const;
  // Views of r's blobs in `txn`, those `blobs` names; the checkpoint and result stay empty
  // when r has none.
  Status BlobViews(const Txn& txn, const IntentRecord& r, Blobs blobs, std::string_view* payload,
                   std::string_view* checkpoint, std::string_view* result) const;
  // Stages the record: Load sees it at once, Flush stores it, Commit caches it. A record
  // Stage handed out is staged in place (no copy).
  void Put(const IntentRecord& r);
  // The intent's record to change in place, staged for this turn (copied from the cache or
  // read from the store the first time); NotFound as Load. What is changed counts only once
  // Put (through Record or Transition): Commit caches only the records a turn Put, so an
  // operation that fails must still not have changed it (check, then change), or later
  // operations of the same turn would see the change.
  Result<IntentRecord*> Stage(const Txn& txn, const IntentId& id);
  // A new record for `id` (of which the turn has none, or one it deleted), built in place in the
  // turn's staging: Put stages it without a copy. Until it is Put, a failure must Unstage it
  // so that the rest of the turn does not see it half built (a deleted one stays deleted).
  IntentRecord& StageNew(const IntentId& id);
  void Unstage(const IntentId& id);
  // True when this turn Put or erased the intent's record.
  bool WrittenThisTurn(const IntentId& id) const {
    auto it = staged_.find(id);
    return it != staged_.end() && it->second.written;
  }
  // Counts an event this turn recorded, for the metrics (Counted); true for a dead letter.
  bool Count(std::string_view event_type, IntentStatus after);
  // Logs what an operator should hear of: a dead letter (each), lease expiries and other
  // redeliveries (a line per kRedeliveryLogPeriodMs with the counts).
  void LogEvent(const IntentRecord& r, std::string_view event_type, bool dead_letter);
  static constexpr int64_t kRedeliveryLogPeriodMs = 10'000;
  // Appends an event for the record's current status and stages the record. On the
  // destination of a forwarded intent, also adds the event to the intent's update for the
  // origin (sent at Flush). Conflict, before it changes anything, if the intent has no room
  // for another event (CheckEventRoom).
  Status Record(Txn& txn, IntentRecord& r, std::string_view event_type, std::string_view actor,
                std::string details);
  // Whether the intent may record another event (they are numbered in 32 bits).
  static Status CheckEventRoom(const IntentRecord& r);
  // What Transition checks before it changes anything: the lifecycle allows `to`, and there is
  // room for the event. A request that changes the record before its Transition calls this
  // first, as the record it changes is the turn's staged one (check, then change: Stage).
  static Status CheckChange(const IntentRecord& r, IntentStatus to);
  // Appends an event of the node itself (not of an intent) to the audit trail.
  Status RecordNodeEvent(Txn& txn, std::string_view event_type, std::string_view actor,
                         std::string details);
  // Pause or Resume, asked here (from_node empty) or by a peer.
  Result<std::string> SetPaused(Txn& txn, Batch& batch, const std::string& address, bool pause,
                                std::string_view actor, std::string_view reason,
                                const std::string& from_node, bool* changed);
  // Loads paused_ from the store.
  Status LoadPaused(const Txn& txn);
  // Writes the staged records (Flush without the updates).
  Status FlushRecords(Txn& txn);
  // Writes one data message for `peer` to the outbox, numbered on that link. The updates
  // gathered so far go first, so every peer receives messages in the order of the changes
  // they carry.
  // `form`: the body a map, or an array (a compact intent or update). `payload`: the message
  // is stored without the intent's payload, whose offset `body` sets (storage::OutboxPayload).
  Status Emit(Txn& txn, Batch& batch, const std::string& peer, std::string_view kind,
              const std::function<void(MsgWriter&)>& body,
              wire::PeerMessageBuilder::Body form = wire::PeerMessageBuilder::Body::kMap,
              const storage::OutboxPayload* payload = nullptr);
  Status EmitNow(Txn& txn, Batch& batch, const std::string& peer, std::string_view kind,
                 const std::function<void(MsgWriter&)>& body,
                 wire::PeerMessageBuilder::Body form = wire::PeerMessageBuilder::Body::kMap,
                 const storage::OutboxPayload* payload = nullptr);
  // The message numbered `seq` on the link to `peer`, into its outbox (the caller keeps the
  // link's counter).
  Status PutOutboxMessage(
      Txn& txn, Batch& batch, const std::string& peer, uint64_t seq, std::string_view kind,
      const std::function<void(MsgWriter&)>& body,
      wire::PeerMessageBuilder::Body form = wire::PeerMessageBuilder::Body::kMap,
      const storage::OutboxPayload* payload = nullptr);
  // Writes the gathered updates to the outbox, in the order their intents first recorded,
  // but holds those that only say a replica was delivered or started (held_), and notes on
  // each replica the last event its origin is sent (remote_seq).
  Status EmitUpdates(Txn& txn, Batch& batch);
  // The state an update for `r`'s origin leaves it in: its status, attempt, errors, approval,
  // and the seq of its last event (remote_seq).
  static void SetUpdateState(const IntentRecord& r, wire::RemoteUpdate* u);
  // Moves the held updates that are due into this turn's, to be written by EmitUpdates.
  void ReleaseHeld();
  // A held update for `r`, from its record and the events since the last one its origin was
  // sent (after a restart or a failed commit).
  Status HoldFromStore(const Txn& txn, const IntentRecord& r, int64_t due_ms);
  // Another node delivers this intent; this one only mirrors its state.
  bool IsRemote(const IntentRecord& r) const;
  // This node delivers an intent whose origin is another node.
  bool IsReplica(const IntentRecord& r) const;
  // Moves the record to `to`, records the event, and notes the effects; checks first
  // (CheckChange), so that a refused transition leaves the record as it was.
  Status Transition(Txn& txn, Batch& batch, IntentRecord& r, IntentStatus to,
                    std::string_view event_type, std::string_view actor, std::string details);
  // Checks that the intent a complete/fail names (loaded into `r`) may end as `ending` now.
  // Sets *repeated when the same outcome for the same attempt was already recorded. Changes
  // nothing in `r`.
  Status PrepareOutcome(Txn& txn, uint32_t attempt, IntentStatus ending, const IntentRecord& r,
                        bool* repeated);
  Status ScheduleTimer(Txn& txn, storage::TimerKind kind, const IntentRecord& r, int64_t at);
  // Ends a live intent as TIMED_OUT (its deadline passed); tells its destination if remote.
  // Checks before it changes anything, as every change below that takes a record to change.
  Status TimeOut(Txn& txn, Batch& batch, IntentRecord& r);
  // After attempt `r.delivery_attempt` failed with `error` (or its lease ran out): waits and
  // tries again, or fails the intent for good when it is not retryable or out of attempts.
  Status AfterFailedAttempt(Txn& txn, Batch& batch, IntentRecord& r, const ErrorInfo& error);
  // Queues a SUBMITTED intent for its local agent, or forwards it to the node that hosts it.
  Status Dispatch(Txn& txn, Batch& batch, IntentRecord& r, std::string_view payload);
  // Schedules the purge of an ended intent after the retention, unless it is a dead letter.
  Status ScheduleRetention(Txn& txn, const IntentRecord& r);
  // Deletes an ended intent and everything stored with it.
  Status Erase(Txn& txn, Batch& batch, const IntentRecord& r);
  // Called when an intent this node originated ends: sends its reply_to its outcome.
  Status OnEnded(Txn& txn, Batch& batch, IntentRecord& r);
  // Queues the intent for `address` (store_.Enqueue, keeping queue_floor_ true).
  Status Enqueue(Txn& txn, const std::string& address, const IntentId& id);
  // Checks that `attempt` names the live delivery of a leased intent.
  Status CheckLease(const IntentRecord& r, uint32_t* attempt) const;
  // Stages a leased intent an agent reports on (heartbeat, checkpoint), checks the lease and
  // moves it to IN_PROGRESS if it is not there yet.
  Result<IntentRecord*> StageForWork(Txn& txn, Batch& batch, const IntentId& id, uint32_t* attempt);
  void ArmLease(const IntentRecord& r);

  storage::Store& store_;
  const Clock& clock_;
  EngineOptions options_;
  RouteTable routes_;
  LeaseTable leases_;
  std::set<std::string> ready_;
  EventCounts turn_events_{};   // recorded since the last Flush
  EventCounts event_totals_{};  // committed
  // Redeliveries not logged yet, by cause (lease expiry, retryable failure, vanished agent).
  std::array<uint64_t, 3> redeliveries_unlogged_{};
  int64_t redelivery_logged_ms_ = INT64_MIN / 2;
  // Per address, an id no queued intent is older than: DeliverNext starts its search there
  // rather than at the head, past entries it dequeued whose deletions are not committed yet.
  std::unordered_map<std::string, IntentId> queue_floor_;
  std::optional<int64_t> next_timer_;  // earliest timer in the store (a hint)
  // A timer no stored timer comes before: FireTimers starts there rather than stepping over
  // the deleted timers of pending turns again for every timer it fires.
  std::optional<storage::TimerEntry> timer_floor_;
  uint64_t audit_seq_ = 0;            // last audit seq written
  uint32_t node_event_seq_ = 0;       // last seq of the node's own events
  uint64_t node_last_audit_seq_ = 0;  // and the audit seq of the last one
  IntentId newest_id_;                // no intent has a greater id (staged ones included)
  EventRecord event_scratch_;         // Record's event, reused (see there)
  std::map<std::string, PauseInfo> paused_;
  std::array<int64_t, kIntentStatusCount> counts_{};
  // Committed records, and the ones this turn wrote or deleted (nullopt), applied to the cache
  // at Commit. Loads are logically const: both only spare decoding what the store holds.
  mutable RecordCache cache_{kRecordCacheCapacity};
  struct Staged {
    std::optional<IntentRecord> record;  // nullopt: deleted this turn
    bool written = false;                // Put or erased this turn (else only Staged)
  };
  std::unordered_map<IntentId, Staged, IntentIdHash> staged_;
  std::unordered_set<IntentId, IntentIdHash> unflushed_;  // staged records not yet stored
  // The events replicas recorded since the last Flush, for their origins: one update per
  // intent carrying all of them and the state the last one left (a delivery records received
  // and delivered in one turn, and they cross the link, are stored and are applied as one
  // message rather than two).
  struct PendingUpdate {
    std::string peer;
    wire::RemoteUpdate update;
    bool checkpointed = false;  // one of the events saved a checkpoint: the update carries it
    // Once held: when it is due (kept however often it is held again).
    std::optional<int64_t> held_due_ms;
  };
  std::vector<PendingUpdate> updates_;
  std::unordered_map<IntentId, size_t, IntentIdHash> update_of_;  // index in updates_
  // Updates that only said a replica was delivered or started, held past their turn for up
  // to update_delay_ms: the intent's next change takes them into its own update (Record),
  // or they go out when due (ReleaseHeld). Not in the store: a replica whose record's
  // remote_seq (the last event its origin was sent) is below its seq has one, which is how
  // Recover finds them again after a restart or a failed commit.
  std::unordered_map<IntentId, PendingUpdate, IntentIdHash> held_;
  std::set<std::pair<int64_t, IntentId>> held_order_;  // (held_due_ms, id) of each in held_
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_ENGINE_H_
