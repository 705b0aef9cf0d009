// The Store's events: each stored once in the audit trail, chained to its intent's previous
// one, with a sparse index per intent (schema.h). The rest of the Store is in store.cc.

#include <algorithm>

#include "storage/keys.h"
#include "storage/store.h"

namespace handoff::storage {

Status Store::PurgeHistory(Txn& txn, const IntentRecord& record) {
  const IntentId& id = record.id;
  // Its history, newest first along the chain; a link already gone ends it (what it led to
  // cannot be reached any more).
  uint64_t at = record.last_audit_seq;
  for (uint32_t left = record.seq; at != 0 && left > 0; --left) {
    const auto key = U64Key(at);
    std::string_view bytes;
    Status s = txn.Get(audit_, key, &bytes);
    if (s.IsNotFound()) break;
    HANDOFF_RETURN_IF_ERROR(s);
    IntentId owner;
    uint64_t prev = 0;
    HANDOFF_RETURN_IF_ERROR(StoredEventLink(bytes, &owner, &prev));
    if (owner != id) {
      return Status::Corruption("audit entry " + std::to_string(at) + " belongs to intent " +
                                owner.ToString() + ", not to " + id.ToString() +
                                " whose history leads to it");
    }
    HANDOFF_RETURN_IF_ERROR(txn.Delete(audit_, key));
    at = prev;
  }
  for (uint32_t seq = kEventIndexEvery; seq != 0 && seq <= record.seq; seq += kEventIndexEvery) {
    HANDOFF_RETURN_IF_ERROR(txn.Delete(events_, EventKey(id, seq)));
    if (seq > UINT32_MAX - kEventIndexEvery) break;
  }
  return Status::OK();
}

Status Store::PutEvent(Txn& txn, const EventRecord& event) {
  HANDOFF_RETURN_IF_ERROR(txn.Append(audit_, U64Key(event.audit_seq), EncodeEvent(event)));
  if (!Indexed(event.id, event.seq)) return Status::OK();
  const auto value = U64Key(event.audit_seq);
  return txn.Put(events_, EventKey(event.id, event.seq), value);
}

Status Store::ListEvents(const Txn& txn, const IntentRecord& record, uint32_t since, size_t limit,
                         std::vector<EventRecord>* out) const {
  if (since >= record.seq || limit == 0) return Status::OK();
  // The events wanted are since+1 .. last. The chain runs backwards, so the walk starts at
  // the first indexed event at or after `last` (or at the newest), at most
  // kEventIndexEvery - 1 past it.
  const uint32_t last =
      static_cast<uint32_t>(std::min<uint64_t>(record.seq, uint64_t{since} + limit));
  uint64_t at = record.last_audit_seq;
  uint32_t seq = record.seq;
  const uint64_t indexed =
      (uint64_t{last} + kEventIndexEvery - 1) / kEventIndexEvery * kEventIndexEvery;
  if (indexed < record.seq) {
    std::string_view value;
    Status s = txn.Get(events_, EventKey(record.id, static_cast<uint32_t>(indexed)), &value);
    if (s.IsNotFound()) {
      return Status::Corruption("the history of intent " + record.id.ToString() +
                                " lacks its index entry for event " + std::to_string(indexed));
    }
    HANDOFF_RETURN_IF_ERROR(s);
    if (value.size() != 8) return Status::Corruption("events index entry is not 8 bytes");
    at = ReadU64(value);
    seq = static_cast<uint32_t>(indexed);
  }
  const size_t first = out->size();
  for (; seq > since; --seq) {
    std::string_view bytes;
    Status s = txn.Get(audit_, U64Key(at), &bytes);
    if (s.IsNotFound()) {
      return Status::Corruption("the history of intent " + record.id.ToString() + " lacks event " +
                                std::to_string(seq) + " (audit entry " + std::to_string(at) + ")");
    }
    HANDOFF_RETURN_IF_ERROR(s);
    HANDOFF_ASSIGN_OR_RETURN(EventRecord e, DecodeEvent(bytes));
    if (e.id != record.id || e.seq != seq) {
      return Status::Corruption("audit entry " + std::to_string(at) + " is event " +
                                std::to_string(e.seq) + " of intent " + e.id.ToString() +
                                ", not event " + std::to_string(seq) + " of " +
                                record.id.ToString());
    }
    at = e.prev_audit_seq;
    if (seq <= last) out->push_back(std::move(e));
  }
  std::reverse(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
  return Status::OK();
}

Status Store::LastNodeEvent(const Txn& txn, uint32_t* seq, uint64_t* audit_seq) const {
  *seq = 0;
  *audit_seq = 0;
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, events_));
  const IntentId node_events;  // all zero
  const std::string_view prefix = node_events.bytes();
  if (cursor.SeekLastAtOrBefore(EventKey(node_events, UINT32_MAX)) &&
      cursor.key().substr(0, prefix.size()) == prefix) {
    if (cursor.value().size() != 8) return Status::Corruption("events index entry is not 8 bytes");
    *seq = ReadU32(cursor.key().substr(prefix.size()));
    *audit_seq = ReadU64(cursor.value());
  }
  return cursor.status();
}

Result<uint64_t> Store::LastAuditSeq(const Txn& txn) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, audit_));
  if (!cursor.Last()) {
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    return uint64_t{0};
  }
  return ReadU64(cursor.key());
}

Status Store::ListAudit(const Txn& txn, uint64_t since, size_t limit,
                        std::vector<EventRecord>* events) const {
  if (since == UINT64_MAX) return Status::OK();
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, audit_));
  for (bool more = cursor.Seek(U64Key(since + 1)); more && events->size() < limit;
       more = cursor.Next()) {
    HANDOFF_ASSIGN_OR_RETURN(EventRecord e, DecodeEvent(cursor.value()));
    e.audit_seq = ReadU64(cursor.key());
    events->push_back(std::move(e));
  }
  return cursor.status();
}

}  // namespace handoff::storage
