// What the Engine answers without changing anything: an intent, its payload, checkpoint and
// result, its events, and lists of intents.

#include "node/engine.h"

namespace handoff::node {

Status Engine::Get(const Txn& txn, const IntentId& id, IntentView* out) const {
  HANDOFF_RETURN_IF_ERROR(Load(txn, id, &out->record));
  return ReadBlobs(txn, out);
}

Result<Engine::Peeked> Engine::Peek(const Txn& txn, const IntentId& id, Blobs blobs) const {
  Peeked out;
  HANDOFF_ASSIGN_OR_RETURN(out.borrowed, Kept(id));
  if (out.borrowed == nullptr) {
    out.owned.emplace();
    HANDOFF_RETURN_IF_ERROR(store_.GetIntent(txn, id, &*out.owned));
    cache_.Put(*out.owned);  // committed state (nothing this turn wrote is staged), as Load
  }
  HANDOFF_RETURN_IF_ERROR(
      BlobViews(txn, out.record(), blobs, &out.payload, &out.checkpoint, &out.result));
  return out;
}

Status Engine::ReadBlobs(const Txn& txn, IntentView* out, Blobs blobs) const {
  std::string_view payload, checkpoint, result;
  HANDOFF_RETURN_IF_ERROR(BlobViews(txn, out->record, blobs, &payload, &checkpoint, &result));
  out->payload.assign(payload);
  out->checkpoint.assign(checkpoint);
  out->result.assign(result);
  return Status::OK();
}

Status Engine::BlobViews(const Txn& txn, const IntentRecord& r, Blobs blobs,
                         std::string_view* payload, std::string_view* checkpoint,
                         std::string_view* result) const {
  if (blobs == Blobs::kNone) return Status::OK();
  if (blobs == Blobs::kAll) {
    HANDOFF_RETURN_IF_ERROR(store_.GetBlobView(txn, r.id, BlobKind::kPayload, payload));
  }
  // Only a checkpointed intent has a checkpoint, and only an ended one a result.
  if (r.has_checkpoint) {
    Status s = store_.GetBlobView(txn, r.id, BlobKind::kCheckpoint, checkpoint);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  if (IsTerminal(r.status)) {
    Status s = store_.GetBlobView(txn, r.id, BlobKind::kResult, result);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  return Status::OK();
}

Status Engine::Events(const Txn& txn, const IntentId& id, uint32_t since, size_t limit,
                      std::vector<EventRecord>* out) const {
  IntentRecord r;
  HANDOFF_RETURN_IF_ERROR(Load(txn, id, &r));
  return store_.ListEvents(txn, r, since, limit, out);
}

Status Engine::List(Txn& txn, const ListFilter& filter, std::vector<IntentRecord>* out) {
  if (txn.is_write()) HANDOFF_RETURN_IF_ERROR(FlushRecords(txn));
  return store_.ScanIntents(txn, [&](const IntentRecord& r) {
    if (filter.status && r.status != *filter.status) return true;
    if (!filter.to_agent.empty() && r.to_agent != filter.to_agent) return true;
    if (!filter.from_agent.empty() && r.from_agent != filter.from_agent) return true;
    out->push_back(r);
    return out->size() < filter.limit;
  });
}

}  // namespace handoff::node
