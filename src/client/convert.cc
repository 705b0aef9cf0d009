#include "client/convert.h"

#include "base/records.h"

namespace handoff {

std::string JsonToMsgpack(const Json& value) {
  std::vector<std::uint8_t> bytes = Json::to_msgpack(value);
  return std::string(bytes.begin(), bytes.end());
}

Result<Json> MsgpackToJson(const msgpack::object& object) {
  std::string bytes = Pack(object);
  try {
    return Json::from_msgpack(bytes.begin(), bytes.end());
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("value cannot be shown as JSON: ") + e.what());
  }
}

namespace {

Result<Json> OptionalJson(const MapReader& m, std::string_view key) {
  const msgpack::object* o = m.Find(key);
  if (o == nullptr) return Json();
  return MsgpackToJson(*o);
}

}  // namespace

Result<Intent> ReadIntent(const msgpack::object& object) {
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(object, "intent"));
  IntentRecord r;
  HANDOFF_RETURN_IF_ERROR(ReadIntentFields(m, &r));
  Intent intent;
  intent.intent_id = r.id.ToString();
  intent.intent_type = std::move(r.intent_type);
  intent.from_agent = std::move(r.from_agent);
  intent.to_agent = std::move(r.to_agent);
  intent.correlation_id = std::move(r.correlation_id);
  intent.parent_id = std::move(r.parent_id);
  intent.origin_node = std::move(r.origin_node);
  intent.target_node = std::move(r.target_node);
  intent.deadline_ms = r.deadline_ms;
  intent.max_attempts = r.max_attempts;
  intent.last_error = std::move(r.last_error);
  intent.idempotency_key = std::move(r.idempotency_key);
  intent.reply_to = std::move(r.reply_to);
  intent.replay_of = std::move(r.replay_of);
  intent.approval = std::move(r.approval);
  intent.lease_ms = r.lease_ms;
  intent.status = r.status;
  intent.waiting_reason = std::move(r.waiting_reason);
  intent.delivery_attempt = r.delivery_attempt;
  intent.error = std::move(r.error);
  intent.created_at_ms = r.created_at_ms;
  intent.updated_at_ms = r.updated_at_ms;
  intent.seq = r.seq;
  HANDOFF_ASSIGN_OR_RETURN(intent.payload, OptionalJson(m, "payload"));
  HANDOFF_ASSIGN_OR_RETURN(intent.checkpoint, OptionalJson(m, "checkpoint"));
  HANDOFF_ASSIGN_OR_RETURN(intent.result, OptionalJson(m, "result"));
  return intent;
}

Result<Event> ReadEvent(const msgpack::object& object) {
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(object, "event"));
  EventRecord r;
  HANDOFF_RETURN_IF_ERROR(ReadEventFields(m, &r, /*node_events=*/true));
  Event e;
  if (!r.id.IsZero()) e.intent_id = r.id.ToString();
  e.seq = r.seq;
  e.event_type = std::move(r.event_type);
  e.status = r.status;
  e.at_ms = r.at_ms;
  e.node = std::move(r.node);
  e.actor = std::move(r.actor);
  HANDOFF_ASSIGN_OR_RETURN(e.details, OptionalJson(m, "details"));
  return e;
}

}  // namespace handoff
