// The on-disk layout of a handoffd data directory: every LMDB table, its key and its value.
// This header is the one place the layout is written down (docs/storage.md repeats it for
// operators). Bump kSchemaVersion on any incompatible change.
//
//   table    key                                   value
//   -------  ------------------------------------  --------------------------------------------
//   meta     ascii name                            ascii/bytes: "schema_version", "node_name",
//                                                  "log_seq" (u64 LE: last log record applied)
//   intents  intent id (16 bytes, UUIDv7)          IntentRecord, its stored form (records.h)
//   blobs    intent id (16) + kind (1 byte)        one msgpack value: 'p' payload,
//                                                  'c' latest checkpoint, 'r' result
//   events   intent id (16) + seq (u32 big-endian) audit seq (u64 BE) of that event: the index
//                                                  of each intent's history, for every
//                                                  kEventIndexEvery-th event of an intent
//                                                  and every event of the node's own
//   queue    to_agent address + 0x00 + intent id  empty: SUBMITTED intents awaiting delivery,
//                                                  in creation order per address
//   outbox   peer name + 0x00 + link seq (u64 BE)  queued_at (i64 BE, ms) + one encoded peer
//                                                  message, kept until the peer acknowledges it;
//                                                  or queued_at + 'S' + offset (u32 BE) +
//                                                  intent id (16) + a forwarded intent's message
//                                                  with a nil at offset where its payload blob
//                                                  goes (store.h, OutboxPayload; the intent
//                                                  record's forward_seq names the entry)
//   links    "out/" + peer                         u64 BE: last link seq assigned towards peer
//            "in/" + peer                          u64 BE: last link seq applied from peer
//   audit    node-wide seq (u64 BE)                EventRecord (records.h): every event, in
//                                                  the order recorded, each chained to the
//                                                  one before it of its intent
//                                                  (prev_audit_seq); an intent's record
//                                                  holds where its chain starts
//                                                  (last_audit_seq)
//   idem     from_agent + 0x00 + idempotency key   intent id (16) + content hash (32): the
//                                                  intent a (sender, key) first made
//   timers   fire_at (u64 BE, ms) + intent id      u32 BE: the delivery attempt it belongs to
//            (16) + kind (1 byte)                  (kinds in TimerKind); earliest first
//   paused   agent address                         msgpack map {reason, actor, at, from_node}:
//                                                  a local address nothing is delivered to
//
// Events of the node itself (an address paused or resumed) are stored like an intent's, under
// the all-zero intent id, numbered from 1, and every one of them is indexed.
//
// Schema 1 (earlier releases) kept each event in "events" under (intent id,
// seq) and a second record per event in "audit" naming it: two records per event. Store::Open
// migrates a schema 1 directory in place, once, in one transaction (storage/migrate.cc).
//
// Schema 2 stored every outbox message whole, and intent records of stored form 2 at most
// (records.cc; form 3 added forward_seq). Schema 3 stored records in forms 2 and 3, whose
// integers and lengths are fixed-width, and logged write sets with fixed-width lengths;
// schema 4 writes form 4 (varints) and varint lengths in the log (write_set.h). Every earlier
// form is still read: schema 2 and 3 directories are schema 4 as they are, relabelled at open
// (after their log is replayed).
//
// Intent ids are UUIDv7, so "intents" iterates in creation order and an intent's events are
// contiguous and in seq order. Leases are not stored: a leased intent is one whose status is
// DELIVERED/ACKNOWLEDGED/IN_PROGRESS, and its lease is re-armed in memory on start-up.

#ifndef HANDOFF_STORAGE_SCHEMA_H_
#define HANDOFF_STORAGE_SCHEMA_H_

#include <cstdint>

namespace handoff::storage {

inline constexpr uint32_t kSchemaVersion = 4;

// Every how many events of an intent the events table indexes one: a listing walks at most
// this many events more than it returns.
inline constexpr uint32_t kEventIndexEvery = 64;

inline constexpr const char* kMetaTable = "meta";
inline constexpr const char* kIntentsTable = "intents";
inline constexpr const char* kBlobsTable = "blobs";
inline constexpr const char* kEventsTable = "events";
inline constexpr const char* kQueueTable = "queue";
inline constexpr const char* kOutboxTable = "outbox";
inline constexpr const char* kLinksTable = "links";
inline constexpr const char* kTimersTable = "timers";
inline constexpr const char* kIdemTable = "idem";
inline constexpr const char* kAuditTable = "audit";
// Opened last: a table's number (its LMDB dbi) is what the write-ahead log records, so new
// tables only ever go at the end of the list (Store::OpenTables).
inline constexpr const char* kPausedTable = "paused";

inline constexpr const char* kMetaSchemaVersion = "schema_version";
inline constexpr const char* kMetaNodeName = "node_name";
// u64 little-endian: the last write-ahead log record applied to LMDB (log.h).
inline constexpr const char* kMetaLogSeq = "log_seq";

// What a timer does when it fires.
enum class TimerKind : char {
  kDeadline = 'D',    // the intent's deadline: it times out
  kRetry = 'R',       // a retryable failure's backoff ended: deliver it again
  kIdemExpiry = 'K',  // its idempotency key's retention ended: forget the key
  kPurge = 'P',       // the ended intent's retention ended: delete it and its history
};

enum class BlobKind : char {
  kPayload = 'p',
  kCheckpoint = 'c',
  kResult = 'r',
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_SCHEMA_H_
