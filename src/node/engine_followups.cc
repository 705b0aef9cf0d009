// What follows an intent's end: the reply to its reply_to, and replays of it.

#include <spdlog/spdlog.h>

#include "node/engine.h"

namespace handoff::node {

Status Engine::OnEnded(Txn& txn, Batch& batch, IntentRecord& r) {
  if (r.reply_to.empty() || IsReplica(r)) return Status::OK();  // the origin replies, once
  std::string result;
  Status s = store_.GetBlob(txn, r.id, BlobKind::kResult, &result);
  if (!s.ok() && !s.IsNotFound()) return s;
  SendParams p;
  p.intent_type = "intent.reply.v1";
  p.from_agent = r.to_agent;
  p.to_agent = r.reply_to;
  p.correlation_id = r.correlation_id;
  p.parent_id = r.id.ToString();
  MsgWriter payload;
  payload.BeginMap();
  payload.Field("intent_id", r.id.ToString());
  payload.Field("intent_type", r.intent_type);
  payload.Field("status", IntentStatusName(r.status));
  payload.FieldRaw("result", result);
  payload.Key("error");
  if (r.error) {
    WriteErrorInfo(payload, *r.error);
  } else {
    payload.Nil();
  }
  if (!r.correlation_id.empty()) payload.Field("correlation_id", r.correlation_id);
  payload.EndMap();
  p.payload = payload.Release();
  auto reply = Send(txn, batch, p);
  MsgWriter details;
  details.BeginMap();
  if (reply.ok()) {
    details.Field("reply_intent_id", reply->record->id.ToString());
    details.Field("reply_to", r.reply_to);
    details.EndMap();
    return Record(txn, r, "intent.reply_sent", "system", details.Release());
  }
  // A reply that cannot be made (its payload too big, say) must not undo the ending itself.
  if (reply.status().IsIOError() || reply.status().IsResourceExhausted() ||
      reply.status().IsCorruption()) {
    return reply.status();
  }
  spdlog::error("intent {} ended but its reply to {} could not be sent: {}", r.id.ToString(),
                r.reply_to, reply.status().ToString());
  details.Field("reply_to", r.reply_to);
  details.Field("code", CodeName(reply.status().code()));
  details.Field("message", reply.status().message());
  details.EndMap();
  return Record(txn, r, "intent.reply_failed", "system", details.Release());
}

Result<SendResult> Engine::Replay(Txn& txn, Batch& batch, const IntentId& id,
                                  std::string_view actor) {
  HANDOFF_ASSIGN_OR_RETURN(IntentRecord * staged, Stage(txn, id));
  IntentRecord& r = *staged;  // stays put while Send stages the new intent (a node-based map)
  if (!IsTerminal(r.status)) {
    return Status::Conflict("intent " + id.ToString() + " is still " +
                            std::string(IntentStatusName(r.status)) +
                            "; only an intent that has ended can be replayed");
  }
  if (IsReplica(r)) {
    return Status::Conflict("intent " + id.ToString() + " came from node " + r.origin_node +
                            "; replay it there");
  }
  SendParams p;
  HANDOFF_RETURN_IF_ERROR(store_.GetBlob(txn, id, BlobKind::kPayload, &p.payload));
  p.intent_type = r.intent_type;
  p.from_agent = r.from_agent;
  p.to_agent = r.to_agent;
  p.correlation_id = r.correlation_id;
  p.parent_id = r.parent_id;
  p.reply_to = r.reply_to;
  p.lease_ms = r.lease_ms;
  p.max_attempts = r.max_attempts;
  p.retry_initial_ms = r.retry_initial_ms;
  p.retry_multiplier = r.retry_multiplier;
  p.retry_max_ms = r.retry_max_ms;
  p.replay_of = id.ToString();
  HANDOFF_RETURN_IF_ERROR(CheckEventRoom(r));  // before the replay is sent
  HANDOFF_ASSIGN_OR_RETURN(SendResult replay, Send(txn, batch, p));
  MsgWriter details;
  details.BeginMap();
  details.Field("replay_intent_id", replay.record->id.ToString());
  details.EndMap();
  HANDOFF_RETURN_IF_ERROR(
      Record(txn, r, "intent.replayed", actor.empty() ? "operator" : actor, details.Release()));
  if (r.status == IntentStatus::kFailed && options_.retention_ms > 0) {
    // A dead letter no longer once replayed: kept for the retention, like any ended intent.
    HANDOFF_RETURN_IF_ERROR(
        ScheduleTimer(txn, storage::TimerKind::kPurge, r, clock_.NowMs() + options_.retention_ms));
  }
  return replay;
}

}  // namespace handoff::node
