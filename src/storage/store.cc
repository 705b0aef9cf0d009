#include "storage/store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "storage/write_set.h"

namespace handoff::storage {
namespace {

// A key of at most N bytes, built without allocating (the hot tables' keys are a few bytes
// longer than a std::string holds inline).
template <size_t N>
class FixedKey {
 public:
  void Append(std::string_view bytes) {
    std::memcpy(data_ + size_, bytes.data(), bytes.size());
    size_ += bytes.size();
  }
  void Append(char c) { data_[size_++] = c; }
  operator std::string_view() const { return {data_, size_}; }

 private:
  char data_[N];
  size_t size_ = 0;
};

FixedKey<IntentId::kSize + 1> BlobKey(const IntentId& id, BlobKind kind) {
  FixedKey<IntentId::kSize + 1> key;
  key.Append(id.bytes());
  key.Append(static_cast<char>(kind));
  return key;
}

FixedKey<IntentId::kSize + 4> EventKey(const IntentId& id, uint32_t seq) {
  FixedKey<IntentId::kSize + 4> key;
  key.Append(id.bytes());
  for (int shift = 24; shift >= 0; shift -= 8) key.Append(static_cast<char>(seq >> shift));
  return key;
}

// `address` and its terminator, with room reserved for `room` more bytes, so that appending
// the rest of the key does not allocate a second time.
std::string QueuePrefix(std::string_view address, size_t room = 0) {
  std::string key;
  key.reserve(address.size() + 1 + room);
  key.append(address);
  key.push_back('\0');
  return key;
}

// A queue key, `address` + 0x00 + an intent id (or the prefix alone with no id), built on the
// stack: addresses are at most 255 bytes (base/names.h); a longer one goes to the heap.
class QueueKey {
 public:
  explicit QueueKey(std::string_view address, const IntentId* id = nullptr) {
    const size_t n = address.size() + 1 + (id != nullptr ? IntentId::kSize : 0);
    char* p = inline_;
    if (n > sizeof(inline_)) {
      heap_.resize(n);
      p = heap_.data();
    }
    std::memcpy(p, address.data(), address.size());
    p[address.size()] = '\0';
    if (id != nullptr) std::memcpy(p + address.size() + 1, id->bytes().data(), IntentId::kSize);
    key_ = {p, n};
    prefix_ = key_.substr(0, address.size() + 1);
  }
  QueueKey(const QueueKey&) = delete;
  QueueKey& operator=(const QueueKey&) = delete;
  std::string_view key() const { return key_; }
  std::string_view prefix() const { return prefix_; }

 private:
  char inline_[256 + 1 + IntentId::kSize];
  std::string heap_;
  std::string_view key_, prefix_;
};

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

FixedKey<8> U64Key(uint64_t v) {
  FixedKey<8> key;
  for (int shift = 56; shift >= 0; shift -= 8) key.Append(static_cast<char>(v >> shift));
  return key;
}

// Whether an event has an entry in the events table (the index of each intent's history).
bool Indexed(const IntentId& id, uint32_t seq) {
  return seq % kEventIndexEvery == 0 || id.IsZero();
}

uint32_t ReadU32(std::string_view bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4 && i < bytes.size(); ++i) v = v << 8 | static_cast<uint8_t>(bytes[i]);
  return v;
}

uint64_t ReadU64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) v = v << 8 | static_cast<uint8_t>(bytes[i]);
  return v;
}

std::string TimerKey(const TimerEntry& t) {
  std::string key;
  AppendU64(&key, static_cast<uint64_t>(t.fire_at_ms));
  key.append(t.id.bytes());
  key.push_back(static_cast<char>(t.kind));
  return key;
}

std::string OutboxKey(std::string_view peer, uint64_t seq) {
  std::string key = QueuePrefix(peer, 8);
  AppendU64(&key, seq);
  return key;
}

// Makes a rename or creation in `dir` durable.
Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + dir + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("cannot flush " + dir + ": " + std::strerror(error));
  return Status::OK();
}

}  // namespace

Status Store::Create(const std::string& dir, const EnvOptions& options,
                     std::string_view node_name) {
  // LMDB writes a new file's first pages without flushing them: a power cut right then could
  // leave a data file it refuses. So the store is made aside, flushed, and moved into place in
  // one rename; a cut before the rename leaves only the scratch directory, made again here.
  namespace fs = std::filesystem;
  const fs::path scratch = fs::path(dir) / ".creating";
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) return Status::IOError("cannot create " + scratch.string() + ": " + ec.message());
  {
    EnvOptions first = options;
    first.log_bytes = 0;  // the log is made beside the data file, in the real directory
    HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Env> env, Env::Open(scratch.string(), first));
    Store store(std::move(env));
    HANDOFF_RETURN_IF_ERROR(store.OpenTables(node_name));
    HANDOFF_RETURN_IF_ERROR(store.env().Sync());
  }
  const fs::path data = fs::path(dir) / "data.mdb";
  if (::rename((scratch / "data.mdb").c_str(), data.c_str()) != 0) {
    return Status::IOError("cannot move the new data file into " + dir + ": " +
                           std::strerror(errno));
  }
  HANDOFF_RETURN_IF_ERROR(SyncDirectory(dir));
  fs::remove_all(scratch, ec);
  return Status::OK();
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const EnvOptions& options,
                                           std::string_view node_name) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "data.mdb", ec)) {
    HANDOFF_RETURN_IF_ERROR(Create(dir, options, node_name));
  }
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Env> env, Env::Open(dir, options));
  std::unique_ptr<Store> store(new Store(std::move(env)));
  HANDOFF_RETURN_IF_ERROR(store->OpenTables(node_name));
  // The log first: records an earlier release wrote are in its layout.
  if (options.log_bytes > 0) HANDOFF_RETURN_IF_ERROR(store->Replay(options));
  if (store->opened_schema_ == 1) HANDOFF_RETURN_IF_ERROR(store->MigrateFromSchema1());
  return store;
}

Status Store::Replay(const EnvOptions& options) {
  HANDOFF_ASSIGN_OR_RETURN(log_, Log::Open(env_->dir() + "/wal", options.log_bytes, options.sync));
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(*env_));
  HANDOFF_ASSIGN_OR_RETURN(const uint64_t applied, GetLogSeq(txn));
  uint64_t last = applied;
  uint64_t replayed = 0;
  // Records up to `applied` are in LMDB already (the log is only restarted once they are
  // durably so); the first one past it must be the next.
  HANDOFF_RETURN_IF_ERROR(log_->Scan([&](uint64_t seq, std::string_view payload) -> Status {
    if (seq <= applied) return Status::OK();
    if (seq != last + 1) {
      return Status::Corruption(log_->path() + " holds batch " + std::to_string(seq) +
                                " but the data file holds batches up to " + std::to_string(last) +
                                " only: the data directory is inconsistent");
    }
    WriteSet writes;
    Status s = WriteSet::Decode(payload, &writes);
    if (s.ok()) s = writes.ApplyTo(txn);
    if (!s.ok()) {
      // Nothing is applied (the transaction is aborted), and the log stays as it is.
      return Status(s.code(), "replaying batch " + std::to_string(seq) + " from " + log_->path() +
                                  " (nothing was applied; the log is kept): " + s.message());
    }
    last = seq;
    ++replayed;
    return Status::OK();
  }));
  if (replayed > 0) {
    HANDOFF_RETURN_IF_ERROR(PutLogSeq(txn, last));
    HANDOFF_RETURN_IF_ERROR(txn.Commit());
    // Durable, meta page included, before the log may be overwritten.
    HANDOFF_RETURN_IF_ERROR(env_->Sync());
    spdlog::info("replayed {} batch(es) from the write-ahead log (up to batch {})", replayed, last);
  } else {
    txn.Abort();
  }
  next_log_seq_ = last + 1;
  log_->Restart();
  return Status::OK();
}

Status Store::PutLogSeq(Txn& txn, uint64_t seq) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(seq >> (8 * i));
  return txn.Put(meta_, kMetaLogSeq, std::string_view(bytes, sizeof(bytes)));
}

Result<uint64_t> Store::GetLogSeq(const Txn& txn) const {
  std::string_view value;
  Status s = txn.Get(meta_, kMetaLogSeq, &value);
  if (s.IsNotFound()) return uint64_t{0};
  HANDOFF_RETURN_IF_ERROR(s);
  if (value.size() != 8) return Status::Corruption("meta log_seq is not 8 bytes");
  uint64_t seq = 0;
  for (int i = 7; i >= 0; --i) seq = seq << 8 | static_cast<uint8_t>(value[i]);
  return seq;
}

Status Store::OpenTables(std::string_view node_name) {
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(*env_));
  HANDOFF_ASSIGN_OR_RETURN(meta_, txn.OpenTable(kMetaTable));
  HANDOFF_ASSIGN_OR_RETURN(intents_, txn.OpenTable(kIntentsTable));
  HANDOFF_ASSIGN_OR_RETURN(blobs_, txn.OpenTable(kBlobsTable));
  HANDOFF_ASSIGN_OR_RETURN(events_, txn.OpenTable(kEventsTable));
  HANDOFF_ASSIGN_OR_RETURN(queue_, txn.OpenTable(kQueueTable));
  HANDOFF_ASSIGN_OR_RETURN(outbox_, txn.OpenTable(kOutboxTable));
  HANDOFF_ASSIGN_OR_RETURN(links_, txn.OpenTable(kLinksTable));
  HANDOFF_ASSIGN_OR_RETURN(timers_, txn.OpenTable(kTimersTable));
  HANDOFF_ASSIGN_OR_RETURN(idem_, txn.OpenTable(kIdemTable));
  HANDOFF_ASSIGN_OR_RETURN(audit_, txn.OpenTable(kAuditTable));
  HANDOFF_ASSIGN_OR_RETURN(paused_, txn.OpenTable(kPausedTable));  // last (schema.h)

  std::string_view version;
  Status s = txn.Get(meta_, kMetaSchemaVersion, &version);
  if (s.IsNotFound()) {
    HANDOFF_RETURN_IF_ERROR(txn.Put(meta_, kMetaSchemaVersion, std::to_string(kSchemaVersion)));
    HANDOFF_RETURN_IF_ERROR(txn.Put(meta_, kMetaNodeName, node_name));
  } else {
    HANDOFF_RETURN_IF_ERROR(s);
    if (version == "1") {
      opened_schema_ = 1;  // Open migrates it, once the log is replayed
    } else if (version != std::to_string(kSchemaVersion)) {
      return Status::Corruption("data directory " + env_->dir() + " has schema version " +
                                std::string(version) + "; this handoffd reads version " +
                                std::to_string(kSchemaVersion));
    }
    std::string_view stored_name;
    HANDOFF_RETURN_IF_ERROR(txn.Get(meta_, kMetaNodeName, &stored_name));
    if (stored_name != node_name) {
      return Status::InvalidArgument("data directory " + env_->dir() + " belongs to node '" +
                                     std::string(stored_name) + "', not '" +
                                     std::string(node_name) +
                                     "': set [node] name to match, or use another data_dir");
    }
  }
  HANDOFF_RETURN_IF_ERROR(txn.Commit());
  return env_->Sync();
}

Status Store::GetIntent(const Txn& txn, const IntentId& id, IntentRecord* out) const {
  std::string_view bytes;
  Status s = txn.Get(intents_, id.bytes(), &bytes);
  if (s.IsNotFound()) return Status::NotFound("no intent " + id.ToString());
  HANDOFF_RETURN_IF_ERROR(s);
  HANDOFF_ASSIGN_OR_RETURN(*out, DecodeIntent(bytes));
  return Status::OK();
}

Status Store::PutIntent(Txn& txn, const IntentRecord& record) {
  return txn.Put(intents_, record.id.bytes(), EncodeIntent(record));
}

Status Store::PurgeIntent(Txn& txn, const IntentRecord& record) {
  const IntentId& id = record.id;
  HANDOFF_RETURN_IF_ERROR(txn.Delete(intents_, id.bytes()));
  for (BlobKind kind : {BlobKind::kPayload, BlobKind::kCheckpoint, BlobKind::kResult}) {
    HANDOFF_RETURN_IF_ERROR(txn.Delete(blobs_, BlobKey(id, kind)));
  }
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

Result<IntentId> Store::LastIntentId(const Txn& txn) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, intents_));
  if (!cursor.Last()) {
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    return IntentId();
  }
  auto id = IntentId::FromBytes(cursor.key());
  if (!id.ok()) return Status::Corruption("an intents key is not an intent id");
  return *id;
}

Status Store::ScanIntents(const Txn& txn,
                          const std::function<bool(const IntentRecord&)>& fn) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, intents_));
  for (bool more = cursor.Last(); more; more = cursor.Prev()) {
    HANDOFF_ASSIGN_OR_RETURN(IntentRecord record, DecodeIntent(cursor.value()));
    if (!fn(record)) break;
  }
  return cursor.status();
}

Status Store::GetBlob(const Txn& txn, const IntentId& id, BlobKind kind, std::string* out) const {
  std::string_view bytes;
  HANDOFF_RETURN_IF_ERROR(GetBlobView(txn, id, kind, &bytes));
  out->assign(bytes);
  return Status::OK();
}

Status Store::GetBlobView(const Txn& txn, const IntentId& id, BlobKind kind,
                          std::string_view* out) const {
  return txn.Get(blobs_, BlobKey(id, kind), out);
}

Status Store::PutBlob(Txn& txn, const IntentId& id, BlobKind kind, std::string_view value) {
  return txn.Put(blobs_, BlobKey(id, kind), value);
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

Status Store::PutPaused(Txn& txn, std::string_view address, std::string_view record) {
  return txn.Put(paused_, address, record);
}

Status Store::DeletePaused(Txn& txn, std::string_view address) {
  return txn.Delete(paused_, address);
}

Status Store::ScanPaused(
    const Txn& txn, const std::function<Status(std::string_view, std::string_view)>& fn) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, paused_));
  for (bool more = cursor.First(); more; more = cursor.Next()) {
    HANDOFF_RETURN_IF_ERROR(fn(cursor.key(), cursor.value()));
  }
  return cursor.status();
}

Status Store::Enqueue(Txn& txn, std::string_view address, const IntentId& id) {
  return txn.Put(queue_, QueueKey(address, &id).key(), {});
}

Status Store::Dequeue(Txn& txn, std::string_view address, const IntentId& id) {
  return txn.Delete(queue_, QueueKey(address, &id).key());
}

Result<std::optional<IntentId>> Store::FirstQueued(const Txn& txn, std::string_view address,
                                                   const IntentId* from) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, queue_));
  const QueueKey start(address, from);
  const std::string_view prefix = start.prefix();
  if (!cursor.Seek(start.key())) {
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    return std::optional<IntentId>();
  }
  std::string_view key = cursor.key();
  if (key.size() != prefix.size() + IntentId::kSize || key.substr(0, prefix.size()) != prefix) {
    return std::optional<IntentId>();
  }
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, IntentId::FromBytes(key.substr(prefix.size())));
  return std::optional<IntentId>(id);
}

Result<uint64_t> Store::CountQueued(const Txn& txn, std::string_view address, uint64_t cap) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, queue_));
  const std::string prefix = QueuePrefix(address);
  uint64_t n = 0;
  for (bool more = cursor.Seek(prefix); more && n < cap; more = cursor.Next()) {
    const std::string_view key = cursor.key();
    if (key.size() != prefix.size() + IntentId::kSize || key.substr(0, prefix.size()) != prefix) {
      break;
    }
    ++n;
  }
  HANDOFF_RETURN_IF_ERROR(cursor.status());
  return n;
}

Result<uint64_t> Store::GetLinkCounter(const Txn& txn, std::string_view key) const {
  std::string_view value;
  Status s = txn.Get(links_, key, &value);
  if (s.IsNotFound()) return uint64_t{0};
  HANDOFF_RETURN_IF_ERROR(s);
  if (value.size() != 8)
    return Status::Corruption("link counter " + std::string(key) + " is not 8 bytes");
  return ReadU64(value);
}

Status Store::SetLinkCounter(Txn& txn, std::string_view key, uint64_t value) {
  std::string bytes;
  AppendU64(&bytes, value);
  return txn.Put(links_, key, bytes);
}

Status Store::PutOutbox(Txn& txn, std::string_view peer, uint64_t seq, int64_t queued_at_ms,
                        std::string_view frame) {
  std::string value;
  value.reserve(8 + frame.size());
  AppendU64(&value, static_cast<uint64_t>(queued_at_ms));
  value.append(frame);
  return txn.Put(outbox_, OutboxKey(peer, seq), value);
}

Result<uint64_t> Store::TrimOutbox(Txn& txn, std::string_view peer, uint64_t upto) {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, outbox_));
  const std::string prefix = QueuePrefix(peer);
  uint64_t removed = 0;
  // Each seek starts past the entry just deleted, so a layered transaction's cursor does not
  // step over the tombstones of this trim again and again.
  std::string from = prefix;
  while (cursor.Seek(from)) {
    std::string_view key = cursor.key();
    if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) break;
    const uint64_t seq = ReadU64(key.substr(prefix.size()));
    if (seq > upto) break;
    HANDOFF_RETURN_IF_ERROR(cursor.DeleteCurrent());
    ++removed;
    from = OutboxKey(peer, seq + 1);
  }
  HANDOFF_RETURN_IF_ERROR(cursor.status());
  return removed;
}

Status Store::ReadOutbox(const Txn& txn, std::string_view peer, uint64_t from, size_t limit,
                         std::vector<OutboxEntry>* out, uint64_t max_bytes) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, outbox_));
  const std::string prefix = QueuePrefix(peer);
  uint64_t bytes = 0;
  for (bool more = cursor.Seek(OutboxKey(peer, from));
       more && out->size() < limit && (out->empty() || bytes < max_bytes); more = cursor.Next()) {
    std::string_view key = cursor.key();
    if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) break;
    std::string_view value = cursor.value();
    if (value.size() < 8) return Status::Corruption("outbox entry shorter than its header");
    out->push_back({ReadU64(key.substr(prefix.size())), static_cast<int64_t>(ReadU64(value)),
                    std::string(value.substr(8))});
    bytes += value.size();
  }
  return cursor.status();
}

Status Store::PutTimer(Txn& txn, const TimerEntry& timer) {
  std::string value;
  for (int shift = 24; shift >= 0; shift -= 8)
    value.push_back(static_cast<char>(timer.attempt >> shift));
  return txn.Put(timers_, TimerKey(timer), value);
}

Status Store::DeleteTimer(Txn& txn, const TimerEntry& timer) {
  return txn.Delete(timers_, TimerKey(timer));
}

Result<std::optional<TimerEntry>> Store::FirstTimer(const Txn& txn, const TimerEntry* from) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, timers_));
  if (!(from != nullptr ? cursor.Seek(TimerKey(*from)) : cursor.First())) {
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    return std::optional<TimerEntry>();
  }
  std::string_view key = cursor.key();
  std::string_view value = cursor.value();
  if (key.size() != 8 + IntentId::kSize + 1 || value.size() != 4) {
    return Status::Corruption("malformed timer entry");
  }
  TimerEntry t;
  t.fire_at_ms = static_cast<int64_t>(ReadU64(key));
  HANDOFF_ASSIGN_OR_RETURN(t.id, IntentId::FromBytes(key.substr(8, IntentId::kSize)));
  t.kind = static_cast<TimerKind>(key.back());
  for (char c : value) t.attempt = t.attempt << 8 | static_cast<uint8_t>(c);
  return std::optional<TimerEntry>(t);
}

Status Store::GetIdempotencyKey(const Txn& txn, std::string_view from, std::string_view key,
                                IntentId* id, std::string* hash) const {
  std::string k = QueuePrefix(from, key.size());
  k.append(key);
  std::string_view value;
  HANDOFF_RETURN_IF_ERROR(txn.Get(idem_, k, &value));
  if (value.size() < IntentId::kSize) return Status::Corruption("malformed idempotency entry");
  HANDOFF_ASSIGN_OR_RETURN(*id, IntentId::FromBytes(value.substr(0, IntentId::kSize)));
  hash->assign(value.substr(IntentId::kSize));
  return Status::OK();
}

Status Store::PutIdempotencyKey(Txn& txn, std::string_view from, std::string_view key,
                                const IntentId& id, std::string_view hash) {
  std::string k = QueuePrefix(from, key.size());
  k.append(key);
  std::string value(id.bytes());
  value.append(hash);
  return txn.Put(idem_, k, value);
}

Status Store::DeleteIdempotencyKey(Txn& txn, std::string_view from, std::string_view key) {
  std::string k = QueuePrefix(from, key.size());
  k.append(key);
  return txn.Delete(idem_, k);
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
