// Store::MigrateFromSchema1: a schema 1 data directory rewritten as schema 2, which is schema 4
// as it is (schema.h); Store::Relabel: a schema 2 or 3 directory relabelled schema 4.
//
// Schema 1 kept each event in "events" under (intent id, seq) and, in "audit", an entry per
// event naming it. Schema 2 keeps the event itself in "audit" under its audit seq, chained to
// the intent's event before it, and "events" becomes the sparse index of each history. The
// migration walks "events" once, in key order (so each intent's events in seq order):
//
//   - each event goes into "audit" under its audit seq, over the entry that named it, with
//     prev_audit_seq set to the audit seq of the intent's event before it; an event no audit
//     entry named (audit_seq 0) is given the next free one, after every other;
//   - its "events" entry becomes the index entry when the index keeps that seq, and goes
//     otherwise;
//   - each intent's record gets last_audit_seq, the start of its chain.
//
// Audit entries still in schema 1's form afterwards named events that were not there; they
// go. It all happens in one transaction, flushed before Open returns: a crash before the
// commit leaves schema 1 as it was, to be migrated at the next open.

#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "storage/keys.h"
#include "storage/store.h"

namespace handoff::storage {
namespace {

constexpr size_t kSchema1AuditValueBytes = IntentId::kSize + 4;

// The smallest key after `key`.
std::string After(std::string_view key) {
  std::string next(key);
  next.push_back('\0');
  return next;
}

}  // namespace

bool Store::TakenInSchema2(const Txn& txn, uint64_t audit_seq) const {
  std::string_view value;
  return txn.Get(audit_, U64Key(audit_seq), &value).ok() && value.size() != kSchema1AuditValueBytes;
}

Status Store::MigrateFromSchema1() {
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(*env_));
  HANDOFF_ASSIGN_OR_RETURN(uint64_t last_audit, LastAuditSeq(txn));
  uint64_t events = 0, unnamed = 0, dangling = 0;

  std::optional<IntentId> intent;  // whose events the walk is in
  uint64_t chain = 0;              // the audit seq of its latest event so far
  auto finish_intent = [&]() -> Status {
    if (!intent || intent->IsZero()) return Status::OK();
    IntentRecord r;
    Status s = GetIntent(txn, *intent, &r);
    if (s.IsNotFound()) return Status::OK();  // events without their intent stay in the trail
    HANDOFF_RETURN_IF_ERROR(s);
    r.last_audit_seq = chain;
    return PutIntent(txn, r);
  };

  {
    HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, events_));
    for (bool more = cursor.First(); more;) {
      const std::string key(cursor.key());
      if (key.size() != IntentId::kSize + 4) {
        return Status::Corruption("migrating from schema 1: an events key of " +
                                  std::to_string(key.size()) + " bytes");
      }
      auto decoded = DecodeEvent(cursor.value());
      if (!decoded.ok()) {
        return Status::Corruption("migrating from schema 1: " + decoded.status().message());
      }
      EventRecord e = std::move(*decoded);
      if (e.id.bytes() != std::string_view(key).substr(0, IntentId::kSize) ||
          e.seq != ReadU32(std::string_view(key).substr(IntentId::kSize))) {
        return Status::Corruption("migrating from schema 1: the event stored under " +
                                  e.id.ToString() + "/" + std::to_string(e.seq) +
                                  " names itself otherwise");
      }
      if (!intent || *intent != e.id) {
        HANDOFF_RETURN_IF_ERROR(finish_intent());
        intent = e.id;
        chain = 0;
      }
      if (e.audit_seq == 0 || TakenInSchema2(txn, e.audit_seq)) {
        // No audit entry named it, or another event already took its place (two events
        // claiming one audit seq: a directory damaged before the migration): the next free.
        e.audit_seq = ++last_audit;
        ++unnamed;
      }
      e.prev_audit_seq = chain;
      chain = e.audit_seq;
      HANDOFF_RETURN_IF_ERROR(txn.Put(audit_, U64Key(e.audit_seq), EncodeEvent(e)));
      if (Indexed(e.id, e.seq)) {
        HANDOFF_RETURN_IF_ERROR(txn.Put(events_, key, U64Key(e.audit_seq)));
      } else {
        HANDOFF_RETURN_IF_ERROR(txn.Delete(events_, key));
      }
      ++events;
      more = cursor.Seek(After(key));  // the table changed under the cursor: find its place
    }
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    HANDOFF_RETURN_IF_ERROR(finish_intent());
  }
  {
    HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, audit_));
    for (bool more = cursor.First(); more;) {
      const std::string key(cursor.key());
      if (cursor.value().size() == kSchema1AuditValueBytes) {  // an event record is longer
        HANDOFF_RETURN_IF_ERROR(txn.Delete(audit_, key));
        ++dangling;
      }
      more = cursor.Seek(After(key));
    }
    HANDOFF_RETURN_IF_ERROR(cursor.status());
  }
  HANDOFF_RETURN_IF_ERROR(txn.Put(meta_, kMetaSchemaVersion, std::to_string(kSchemaVersion)));
  HANDOFF_RETURN_IF_ERROR(txn.Commit());
  HANDOFF_RETURN_IF_ERROR(env_->Sync());
  opened_schema_ = kSchemaVersion;
  spdlog::info(
      "migrated {} from schema 1 to {}: {} event(s) now one record each ({} given a new audit "
      "seq, {} audit entries that named no event dropped)",
      env_->dir(), kSchemaVersion, events, unnamed, dangling);
  return Status::OK();
}

}  // namespace handoff::storage

namespace handoff::storage {

Status Store::Relabel() {
  // Schema 3 added a form of outbox entry and forward_seq at the end of the intent record's
  // stored form (version 3, which reads a version 2 record with it 0); schema 4 a stored form
  // of both records with varint integers (version 4) and log records with varint lengths.
  // Every earlier form is still read as it is: a schema 2 or 3 directory is a schema 4 one.
  const int from = opened_schema_;
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(*env_));
  HANDOFF_RETURN_IF_ERROR(txn.Put(meta_, kMetaSchemaVersion, std::to_string(kSchemaVersion)));
  HANDOFF_RETURN_IF_ERROR(txn.Commit());
  HANDOFF_RETURN_IF_ERROR(env_->Sync());
  opened_schema_ = kSchemaVersion;
  spdlog::info("{}: schema {} is now schema {}", env_->dir(), from, kSchemaVersion);
  return Status::OK();
}

}  // namespace handoff::storage
