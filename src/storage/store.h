// Store: the typed tables of one node's data directory (layout in schema.h).
//
// Every method works inside a transaction the caller owns; the Store never commits, so a caller
// can put any number of operations into one durable batch (group commit). Reads return copies,
// so results stay valid after the transaction ends.
//
// Thread safety: the Store is immutable after Open; transactions follow lmdb.h's rules.

#ifndef HANDOFF_STORAGE_STORE_H_
#define HANDOFF_STORAGE_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/intent_id.h"
#include "base/records.h"
#include "handoff/status.h"
#include "storage/lmdb.h"
#include "storage/log.h"
#include "storage/schema.h"

namespace handoff::storage {

struct OutboxEntry {
  uint64_t seq = 0;
  int64_t queued_at_ms = 0;
  // Points into the transaction it was read in (the map, or a write set above it): valid while
  // that transaction lasts. A link sends up to its byte window from here without a copy. A
  // message stored without its payload (OutboxPayload) is put together in `spliced`, which
  // the view points into then.
  std::string_view frame;
  std::string spliced;
};

// A forwarded intent's message is stored without its payload, which the intent's payload
// blob already holds: a nil stands at `offset` in the frame, and reading the entry puts the
// payload there. The intent's record names the entry (forward_seq): purging the intent first
// writes the payload into its message if that still waits.
struct OutboxPayload {
  IntentId id;
  size_t offset = 0;
};

struct TimerEntry {
  int64_t fire_at_ms = 0;
  IntentId id;
  TimerKind kind = TimerKind::kDeadline;
  uint32_t attempt = 0;
};

// The order of the timers table: by fire time, then intent id, then kind.
inline bool TimerBefore(const TimerEntry& a, const TimerEntry& b) {
  if (a.fire_at_ms != b.fire_at_ms) {
    return static_cast<uint64_t>(a.fire_at_ms) < static_cast<uint64_t>(b.fire_at_ms);
  }
  if (a.id != b.id) return a.id < b.id;
  return static_cast<unsigned char>(a.kind) < static_cast<unsigned char>(b.kind);
}

class Store {
 public:
  // Opens the environment in `dir`, creates missing tables and checks the schema version.
  // `node_name` is recorded on first open; opening with another name is refused, because peers
  // know this data by the name it was created under.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const EnvOptions& options,
                                             std::string_view node_name);

  Env& env() { return *env_; }
  // The write-ahead log (null when EnvOptions::log_bytes is 0), and the seq its next record
  // takes. Open has applied every record the log held to LMDB.
  Log* log() { return log_.get(); }
  uint64_t next_log_seq() const { return next_log_seq_; }
  // Where the last log record applied is recorded: written in the transaction that applies it.
  Status PutLogSeq(Txn& txn, uint64_t seq);
  Result<uint64_t> GetLogSeq(const Txn& txn) const;
  Result<Txn> BeginWrite() { return Txn::BeginWrite(*env_); }
  Result<Txn> BeginRead() { return Txn::BeginRead(*env_); }

  // Intents. GetIntent is NotFound for an unknown id.
  Status GetIntent(const Txn& txn, const IntentId& id, IntentRecord* out) const;
  Status PutIntent(Txn& txn, const IntentRecord& record);
  // Deletes an intent with its blobs and its events.
  Status PurgeIntent(Txn& txn, const IntentRecord& record);
  // The greatest intent id stored (the all-zero id if none).
  Result<IntentId> LastIntentId(const Txn& txn) const;
  // Calls `fn` for each intent, newest first, until it returns false.
  Status ScanIntents(const Txn& txn, const std::function<bool(const IntentRecord&)>& fn) const;

  // Blobs: NotFound when the intent has none of that kind.
  Status GetBlob(const Txn& txn, const IntentId& id, BlobKind kind, std::string* out) const;
  // The same without a copy: `out` is valid while `txn` is open and unwritten.
  Status GetBlobView(const Txn& txn, const IntentId& id, BlobKind kind,
                     std::string_view* out) const;
  Status PutBlob(Txn& txn, const IntentId& id, BlobKind kind, std::string_view value);

  // Events: each is one record in the audit trail, under its audit seq (set by the caller,
  // past every one before), chained to its intent's event before it (prev_audit_seq); every
  // kEventIndexEvery-th event of an intent, and each of the node's own, is also indexed, so
  // that a listing never walks more than that far along the chain.
  Status PutEvent(Txn& txn, const EventRecord& event);
  // Events of `record` with seq > `since`, at most `limit`, in seq order.
  Status ListEvents(const Txn& txn, const IntentRecord& record, uint32_t since, size_t limit,
                    std::vector<EventRecord>* out) const;

  // The delivery queue of each agent address. Enqueue is for an intent entering SUBMITTED,
  // which is never queued already (every transition out of SUBMITTED dequeues; DeliverNext
  // drops an entry that breaks this): its entry is put as new (Txn::PutNew), so that an intent
  // sent and delivered before its batch is logged leaves no queue entry and no tombstone.
  Status Enqueue(Txn& txn, std::string_view address, const IntentId& id);
  Status Dequeue(Txn& txn, std::string_view address, const IntentId& id);
  // How many intents are queued for `address`, counting at most `cap`.
  Result<uint64_t> CountQueued(const Txn& txn, std::string_view address, uint64_t cap) const;
  // The oldest queued intent for `address`, or nullopt; with `from`, the oldest not older than
  // it (the caller knows nothing older is queued).
  Result<std::optional<IntentId>> FirstQueued(const Txn& txn, std::string_view address,
                                              const IntentId* from = nullptr) const;

  // The node-wide audit trail: every event, numbered in the order recorded.
  // The last audit seq written (0 if none).
  Result<uint64_t> LastAuditSeq(const Txn& txn) const;
  // Events with audit seq > `since`, at most `limit`, in order.
  Status ListAudit(const Txn& txn, uint64_t since, size_t limit,
                   std::vector<EventRecord>* events) const;

  // Events of the node itself (under the all-zero intent id): the last one's seq and audit
  // seq, both 0 if none.
  Status LastNodeEvent(const Txn& txn, uint32_t* seq, uint64_t* audit_seq) const;

  // Paused addresses: address -> its pause record (an encoded map, see node/engine.h).
  Status PutPaused(Txn& txn, std::string_view address, std::string_view record);
  Status DeletePaused(Txn& txn, std::string_view address);
  // Calls `fn` for each paused address, in address order; stops at the first error.
  Status ScanPaused(const Txn& txn,
                    const std::function<Status(std::string_view, std::string_view)>& fn) const;

  // Idempotency keys: (sender, key) -> the intent it made and the hash of that request.
  // NotFound when unknown.
  Status GetIdempotencyKey(const Txn& txn, std::string_view from, std::string_view key,
                           IntentId* id, std::string* hash) const;
  Status PutIdempotencyKey(Txn& txn, std::string_view from, std::string_view key,
                           const IntentId& id, std::string_view hash);
  Status DeleteIdempotencyKey(Txn& txn, std::string_view from, std::string_view key);

  // Timers, in firing order.
  Status PutTimer(Txn& txn, const TimerEntry& timer);
  Status DeleteTimer(Txn& txn, const TimerEntry& timer);
  // The earliest timer, or nullopt; with `from`, the earliest not before it (the caller knows
  // no earlier timer exists).
  Result<std::optional<TimerEntry>> FirstTimer(const Txn& txn,
                                               const TimerEntry* from = nullptr) const;

  // Peer links: per-peer counters ("out/<peer>", "in/<peer>"; 0 when unset) and the outbox of
  // messages each peer has not acknowledged yet.
  Result<uint64_t> GetLinkCounter(const Txn& txn, std::string_view key) const;
  // The keys of the counters of messages written towards `peer` and applied from it.
  static std::string OutLinkCounter(std::string_view peer) { return "out/" + std::string(peer); }
  static std::string InLinkCounter(std::string_view peer) { return "in/" + std::string(peer); }
  Status SetLinkCounter(Txn& txn, std::string_view key, uint64_t value);
  // With `payload`, the frame holds a nil where the intent's payload goes (OutboxPayload).
  Status PutOutbox(Txn& txn, std::string_view peer, uint64_t seq, int64_t queued_at_ms,
                   std::string_view frame, const OutboxPayload* payload = nullptr);
  // Deletes the peer's entries with seq <= `upto`. `after`: the last seq already deleted,
  // when the caller knows it, so that those after it are deleted by their keys, without a
  // search (every seq up to the link's counter was one entry, and a key deleted twice is
  // harmless); nullopt: from the first entry held. Returns how many keys it deleted.
  Result<uint64_t> TrimOutbox(Txn& txn, std::string_view peer, std::optional<uint64_t> after,
                              uint64_t upto);
  // The seq and queued_at of the peer's first entry with seq >= `from` (nullopt: none), its
  // message not read.
  struct OutboxHead {
    uint64_t seq = 0;
    int64_t queued_at_ms = 0;
  };
  Result<std::optional<OutboxHead>> FirstOutbox(const Txn& txn, std::string_view peer,
                                                uint64_t from) const;
  // Up to `limit` of the peer's entries with seq >= `from`, in seq order, stopping once
  // they hold `max_bytes` (at least one is read), or before one that cannot be read (an
  // error only when it is the first).
  Status ReadOutbox(const Txn& txn, std::string_view peer, uint64_t from, size_t limit,
                    std::vector<OutboxEntry>* out, uint64_t max_bytes = UINT64_MAX) const;

 private:
  explicit Store(std::unique_ptr<Env> env) : env_(std::move(env)) {}
  // Makes a new store in `dir` durably: built in a scratch directory, flushed, renamed into
  // place (a power cut leaves either no data file or a whole one).
  static Status Create(const std::string& dir, const EnvOptions& options,
                       std::string_view node_name);
  Status OpenTables(std::string_view node_name);
  // Opens the log and applies to LMDB the records it holds past meta's log_seq.
  Status Replay(const EnvOptions& options);
  // Deletes an intent's events and their index entries (store_history.cc).
  Status PurgeHistory(Txn& txn, const IntentRecord& record);
  // The message an outbox value holds (after its queued_at), with the payload put back into
  // one stored without it (into `*spliced`, which the result then points into).
  Result<std::string_view> OutboxFrame(const Txn& txn, std::string_view stored,
                                       std::string* spliced) const;
  // Before a forwarded intent's payload goes: its message (record.forward_seq), if still
  // waiting, with the payload put back in.
  Status KeepForwardedPayload(Txn& txn, const IntentRecord& record);
  // Rewrites a schema 1 data directory as schema 2, in one transaction (schema.h).
  Status MigrateFromSchema1();
  // Relabels a schema 2 or 3 data directory as schema 4, which reads it as it is: its
  // version is rewritten, nothing else (schema.h, migrate.cc).
  Status Relabel();
  // During the migration: whether `audit_seq` already holds an event in schema 2's form.
  bool TakenInSchema2(const Txn& txn, uint64_t audit_seq) const;

  std::unique_ptr<Env> env_;
  std::unique_ptr<Log> log_;
  uint64_t next_log_seq_ = 1;
  int opened_schema_ = kSchemaVersion;
  Table meta_ = 0;
  Table intents_ = 0;
  Table blobs_ = 0;
  Table events_ = 0;
  Table queue_ = 0;
  Table outbox_ = 0;
  Table links_ = 0;
  Table timers_ = 0;
  Table idem_ = 0;
  Table audit_ = 0;
  Table paused_ = 0;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_STORE_H_
