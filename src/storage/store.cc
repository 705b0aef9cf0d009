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

#include "storage/keys.h"
#include "storage/write_set.h"

namespace handoff::storage {
namespace {

// An outbox message stored without its payload (OutboxPayload): queued_at, then this mark
// (a message itself starts with a map header), the payload's offset (u32 BE) and the intent id.
constexpr char kSplicedMark = 'S';
constexpr size_t kSplicedOffsetAt = 1;
constexpr size_t kSplicedIdAt = kSplicedOffsetAt + 4;
constexpr size_t kSplicedHeaderBytes = kSplicedIdAt + IntentId::kSize;
constexpr char kNil = static_cast<char>(0xc0);

FixedKey<IntentId::kSize + 1> BlobKey(const IntentId& id, BlobKind kind) {
  FixedKey<IntentId::kSize + 1> key;
  key.Append(id.bytes());
  key.Append(static_cast<char>(kind));
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
  if (store->opened_schema_ == 2 || store->opened_schema_ == 3) {
    HANDOFF_RETURN_IF_ERROR(store->Relabel());
  }
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
    if (version == "1" || version == "2" || version == "3") {
      opened_schema_ = version[0] - '0';  // Open migrates it, once the log is replayed
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
  if (record.forward_seq != 0) HANDOFF_RETURN_IF_ERROR(KeepForwardedPayload(txn, record));
  HANDOFF_RETURN_IF_ERROR(txn.Delete(intents_, id.bytes()));
  for (BlobKind kind : {BlobKind::kPayload, BlobKind::kCheckpoint, BlobKind::kResult}) {
    HANDOFF_RETURN_IF_ERROR(txn.Delete(blobs_, BlobKey(id, kind)));
  }
  return PurgeHistory(txn, record);
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
  return txn.PutNew(queue_, QueueKey(address, &id).key(), {});
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
                        std::string_view frame, const OutboxPayload* payload) {
  std::string value;
  value.reserve(8 + kSplicedHeaderBytes + frame.size());
  AppendU64(&value, static_cast<uint64_t>(queued_at_ms));
  if (payload != nullptr) {
    if (payload->offset >= frame.size() || frame[payload->offset] != kNil) {
      return Status::InvalidArgument(
          "an outbox message stored without its payload has no nil at its offset");
    }
    value.push_back(kSplicedMark);
    for (int shift = 24; shift >= 0; shift -= 8)
      value.push_back(static_cast<char>(payload->offset >> shift));
    value.append(payload->id.bytes());
  }
  value.append(frame);
  return txn.Put(outbox_, OutboxKey(peer, seq), value);
}

Result<std::string_view> Store::OutboxFrame(const Txn& txn, std::string_view stored,
                                            std::string* spliced) const {
  if (stored.empty() || stored[0] != kSplicedMark) return stored;
  if (stored.size() < kSplicedHeaderBytes) {
    return Status::Corruption("an outbox message without its payload is cut short");
  }
  const size_t offset = ReadU32(stored.substr(kSplicedOffsetAt, 4));
  auto id = IntentId::FromBytes(stored.substr(kSplicedIdAt, IntentId::kSize));
  std::string_view frame = stored.substr(kSplicedHeaderBytes);
  if (!id.ok() || offset >= frame.size() || frame[offset] != kNil) {
    return Status::Corruption("an outbox message without its payload has a malformed header");
  }
  std::string_view payload;
  Status s = GetBlobView(txn, *id, BlobKind::kPayload, &payload);
  if (s.IsNotFound()) {
    return Status::Corruption("the outbox message forwarding intent " + id->ToString() +
                              " lacks its payload, which is gone");
  }
  HANDOFF_RETURN_IF_ERROR(s);
  spliced->clear();
  spliced->reserve(frame.size() - 1 + payload.size());
  spliced->append(frame.substr(0, offset));
  spliced->append(payload);
  spliced->append(frame.substr(offset + 1));
  return std::string_view(*spliced);
}

Status Store::KeepForwardedPayload(Txn& txn, const IntentRecord& record) {
  const std::string key = OutboxKey(record.target_node, record.forward_seq);
  std::string_view value;
  Status s = txn.Get(outbox_, key, &value);
  if (s.IsNotFound()) return Status::OK();  // acknowledged: the peer has it
  HANDOFF_RETURN_IF_ERROR(s);
  if (value.size() < 8) return Status::Corruption("outbox entry shorter than its header");
  std::string_view stored = value.substr(8);
  if (stored.empty() || stored[0] != kSplicedMark) return Status::OK();  // stored whole
  if (stored.size() >= kSplicedHeaderBytes &&
      stored.substr(kSplicedIdAt, IntentId::kSize) != record.id.bytes()) {
    return Status::OK();  // another intent's: this one's was acknowledged and trimmed
  }
  std::string spliced;
  HANDOFF_ASSIGN_OR_RETURN(std::string_view frame, OutboxFrame(txn, stored, &spliced));
  std::string whole;
  whole.reserve(8 + frame.size());
  whole.append(value.substr(0, 8));
  whole.append(frame);
  return txn.Put(outbox_, key, whole);
}

Result<uint64_t> Store::TrimOutbox(Txn& txn, std::string_view peer, std::optional<uint64_t> after,
                                   uint64_t upto) {
  if (after) {
    // By key: a search per entry (a seek through every layer of the transaction) cost more
    // than the delete itself, and a link trims after every few acknowledgements. As many
    // keys as the entries held: a link takes no ack past the last seq it wrote (PeerLink).
    std::string key = OutboxKey(peer, 0);
    const size_t at = key.size() - 8;
    uint64_t removed = 0;
    for (uint64_t seq = *after + 1; seq <= upto; ++seq, ++removed) {
      key.resize(at);
      AppendU64(&key, seq);
      HANDOFF_RETURN_IF_ERROR(txn.Delete(outbox_, key));
    }
    return removed;
  }
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

Result<std::optional<Store::OutboxHead>> Store::FirstOutbox(const Txn& txn, std::string_view peer,
                                                            uint64_t from) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, outbox_));
  const std::string prefix = QueuePrefix(peer);
  if (!cursor.Seek(OutboxKey(peer, from))) {
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    return std::optional<OutboxHead>();
  }
  std::string_view key = cursor.key();
  if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) {
    return std::optional<OutboxHead>();
  }
  std::string_view value = cursor.value();
  if (value.size() < 8) return Status::Corruption("outbox entry shorter than its header");
  return std::optional<OutboxHead>(
      OutboxHead{ReadU64(key.substr(prefix.size())), static_cast<int64_t>(ReadU64(value))});
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
    OutboxEntry& e = out->emplace_back();
    e.seq = ReadU64(key.substr(prefix.size()));
    e.queued_at_ms = static_cast<int64_t>(ReadU64(value));
    auto frame = OutboxFrame(txn, value.substr(8), &e.spliced);
    if (!frame.ok()) {
      out->pop_back();
      if (out->empty()) return frame.status();
      break;  // those before it go; the next read starts at it and reports it
    }
    e.frame = *frame;
    bytes += 8 + e.frame.size();
  }
  // Views into `spliced` again: moving the entries as the vector grew may have moved it.
  for (OutboxEntry& e : *out) {
    if (!e.spliced.empty()) e.frame = e.spliced;
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

}  // namespace handoff::storage
