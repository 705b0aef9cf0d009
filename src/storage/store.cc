#include "storage/store.h"

#include <string>

namespace handoff::storage {
namespace {

std::string BlobKey(const IntentId& id, BlobKind kind) {
  std::string key(id.bytes());
  key.push_back(static_cast<char>(kind));
  return key;
}

std::string EventKey(const IntentId& id, uint32_t seq) {
  std::string key(id.bytes());
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}

std::string QueuePrefix(std::string_view address) {
  std::string key(address);
  key.push_back('\0');
  return key;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const EnvOptions& options,
                                           std::string_view node_name) {
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Env> env, Env::Open(dir, options));
  std::unique_ptr<Store> store(new Store(std::move(env)));
  HANDOFF_RETURN_IF_ERROR(store->OpenTables(node_name));
  return store;
}

Status Store::OpenTables(std::string_view node_name) {
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, Txn::BeginWrite(*env_));
  HANDOFF_ASSIGN_OR_RETURN(meta_, txn.OpenTable(kMetaTable));
  HANDOFF_ASSIGN_OR_RETURN(intents_, txn.OpenTable(kIntentsTable));
  HANDOFF_ASSIGN_OR_RETURN(blobs_, txn.OpenTable(kBlobsTable));
  HANDOFF_ASSIGN_OR_RETURN(events_, txn.OpenTable(kEventsTable));
  HANDOFF_ASSIGN_OR_RETURN(queue_, txn.OpenTable(kQueueTable));

  std::string_view version;
  Status s = txn.Get(meta_, kMetaSchemaVersion, &version);
  if (s.IsNotFound()) {
    HANDOFF_RETURN_IF_ERROR(txn.Put(meta_, kMetaSchemaVersion, std::to_string(kSchemaVersion)));
    HANDOFF_RETURN_IF_ERROR(txn.Put(meta_, kMetaNodeName, node_name));
  } else {
    HANDOFF_RETURN_IF_ERROR(s);
    if (version != std::to_string(kSchemaVersion)) {
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
  return txn.Commit();
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
  HANDOFF_RETURN_IF_ERROR(txn.Get(blobs_, BlobKey(id, kind), &bytes));
  out->assign(bytes);
  return Status::OK();
}

Status Store::PutBlob(Txn& txn, const IntentId& id, BlobKind kind, std::string_view value) {
  return txn.Put(blobs_, BlobKey(id, kind), value);
}

Status Store::PutEvent(Txn& txn, const EventRecord& event) {
  return txn.Put(events_, EventKey(event.id, event.seq), EncodeEvent(event));
}

Status Store::ListEvents(const Txn& txn, const IntentId& id, uint32_t since, size_t limit,
                         std::vector<EventRecord>* out) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, events_));
  if (since == UINT32_MAX) return Status::OK();
  const std::string_view prefix = id.bytes();
  for (bool more = cursor.Seek(EventKey(id, since + 1));
       more && out->size() < limit && cursor.key().substr(0, prefix.size()) == prefix;
       more = cursor.Next()) {
    HANDOFF_ASSIGN_OR_RETURN(EventRecord event, DecodeEvent(cursor.value()));
    out->push_back(std::move(event));
  }
  return cursor.status();
}

Status Store::Enqueue(Txn& txn, std::string_view address, const IntentId& id) {
  std::string key = QueuePrefix(address);
  key.append(id.bytes());
  return txn.Put(queue_, key, {});
}

Status Store::Dequeue(Txn& txn, std::string_view address, const IntentId& id) {
  std::string key = QueuePrefix(address);
  key.append(id.bytes());
  return txn.Delete(queue_, key);
}

Result<std::optional<IntentId>> Store::FirstQueued(const Txn& txn, std::string_view address) const {
  HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, queue_));
  const std::string prefix = QueuePrefix(address);
  if (!cursor.Seek(prefix)) {
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

}  // namespace handoff::storage
