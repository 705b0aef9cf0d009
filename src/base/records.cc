#include "base/records.h"

namespace handoff {
namespace {

Status ReadStatus(const MapReader& m, std::string_view key, IntentStatus* out) {
  std::string name;
  HANDOFF_RETURN_IF_ERROR(m.OptString(key, &name));
  if (name.empty()) return Status::OK();
  auto parsed = ParseIntentStatus(name);
  if (!parsed) return Status::InvalidArgument("unknown status '" + name + "'");
  *out = *parsed;
  return Status::OK();
}

Status ReadId(const MapReader& m, IntentId* out) {
  std::string text;
  HANDOFF_RETURN_IF_ERROR(m.String("intent_id", &text));
  HANDOFF_ASSIGN_OR_RETURN(*out, IntentId::Parse(text));
  return Status::OK();
}

template <typename T>
Status ReadUint32(const MapReader& m, std::string_view key, T* out) {
  uint64_t v = *out;
  HANDOFF_RETURN_IF_ERROR(m.OptUint(key, &v));
  if (v > UINT32_MAX) return Status::InvalidArgument("field '" + std::string(key) + "' too large");
  *out = static_cast<T>(v);
  return Status::OK();
}

}  // namespace

void WriteErrorInfo(MsgWriter& w, const ErrorInfo& error) {
  w.BeginMap();
  w.Field("code", error.code);
  w.Field("message", error.message);
  w.Field("retryable", error.retryable);
  w.EndMap();
}

Status ReadErrorInfo(const MapReader& m, ErrorInfo* out) {
  HANDOFF_RETURN_IF_ERROR(m.OptString("code", &out->code));
  HANDOFF_RETURN_IF_ERROR(m.OptString("message", &out->message));
  return m.OptBool("retryable", &out->retryable);
}

void WriteApproval(MsgWriter& w, const Approval& a) {
  w.BeginMap();
  w.Field("question", a.question);
  w.Key("outcomes");
  w.BeginArray();
  for (const std::string& o : a.outcomes) w.String(o);
  w.EndArray();
  w.Field("requested_by", a.requested_by);
  w.Field("requested_at", a.requested_at_ms);
  w.Field("mid_work", a.mid_work);
  if (a.decided()) {
    w.Field("decision", a.decision);
    w.Field("comment", a.comment);
    w.Field("decided_by", a.decided_by);
    w.Field("decided_at", a.decided_at_ms);
  }
  w.EndMap();
}

Status ReadApproval(const MapReader& m, Approval* out) {
  HANDOFF_RETURN_IF_ERROR(m.OptString("question", &out->question));
  if (const msgpack::object* outcomes = m.Find("outcomes")) {
    if (outcomes->type != msgpack::type::ARRAY) return WrongType("outcomes", "an array", *outcomes);
    for (uint32_t i = 0; i < outcomes->via.array.size; ++i) {
      const msgpack::object& o = outcomes->via.array.ptr[i];
      if (o.type != msgpack::type::STR) return WrongType("outcomes", "strings", o);
      out->outcomes.emplace_back(o.via.str.ptr, o.via.str.size);
    }
  }
  HANDOFF_RETURN_IF_ERROR(m.OptString("requested_by", &out->requested_by));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("requested_at", &out->requested_at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptBool("mid_work", &out->mid_work));
  HANDOFF_RETURN_IF_ERROR(m.OptString("decision", &out->decision));
  HANDOFF_RETURN_IF_ERROR(m.OptString("comment", &out->comment));
  HANDOFF_RETURN_IF_ERROR(m.OptString("decided_by", &out->decided_by));
  return m.OptInt("decided_at", &out->decided_at_ms);
}

void WriteIntentFields(MsgWriter& w, const IntentRecord& r) {
  w.Field("intent_id", r.id.ToText().view());
  w.Field("intent_type", r.intent_type);
  w.Field("from_agent", r.from_agent);
  w.Field("to_agent", r.to_agent);
  if (!r.correlation_id.empty()) w.Field("correlation_id", r.correlation_id);
  if (!r.parent_id.empty()) w.Field("parent_id", r.parent_id);
  w.Field("origin_node", r.origin_node);
  if (!r.target_node.empty()) w.Field("target_node", r.target_node);
  w.Field("lease_ms", r.lease_ms);
  w.Field("status", IntentStatusName(r.status));
  if (!r.waiting_reason.empty()) w.Field("waiting_reason", r.waiting_reason);
  w.Field("delivery_attempt", r.delivery_attempt);
  if (r.has_checkpoint) w.Field("has_checkpoint", true);
  if (r.error) {
    w.Key("error");
    WriteErrorInfo(w, *r.error);
  }
  w.Field("created_at", r.created_at_ms);
  w.Field("updated_at", r.updated_at_ms);
  w.Field("seq", r.seq);
  if (r.remote_seq != 0) w.Field("remote_seq", r.remote_seq);
  if (r.deadline_ms != 0) w.Field("deadline", r.deadline_ms);
  w.Field("max_attempts", r.max_attempts);
  if (r.retry_initial_ms != 0) {
    w.Field("retry_initial_ms", r.retry_initial_ms);
    w.Field("retry_multiplier", r.retry_multiplier);
    w.Field("retry_max_ms", r.retry_max_ms);
  }
  if (r.last_error) {
    w.Key("last_error");
    WriteErrorInfo(w, *r.last_error);
  }
  if (!r.idempotency_key.empty()) w.Field("idempotency_key", r.idempotency_key);
  if (!r.reply_to.empty()) w.Field("reply_to", r.reply_to);
  if (!r.replay_of.empty()) w.Field("replay_of", r.replay_of);
  if (r.approval) {
    w.Key("approval");
    WriteApproval(w, *r.approval);
  }
}

void WriteEventFields(MsgWriter& w, const EventRecord& e) {
  w.Field("intent_id", e.id.ToText().view());
  w.Field("seq", e.seq);
  w.Field("event_type", e.event_type);
  w.Field("status", IntentStatusName(e.status));
  w.Field("at", e.at_ms);
  w.Field("node", e.node);
  w.Field("actor", e.actor);
  if (!e.details.empty()) w.FieldRaw("details", e.details);
}

std::string EncodeIntent(const IntentRecord& r) {
  MsgWriter w;
  w.BeginMap();
  WriteIntentFields(w, r);
  w.EndMap();
  return w.Release();
}

std::string EncodeEvent(const EventRecord& e) {
  MsgWriter w;
  w.BeginMap();
  WriteEventFields(w, e);
  if (e.audit_seq != 0) w.Field("audit_seq", e.audit_seq);
  w.EndMap();
  return w.Release();
}

Status ReadIntentFields(const MapReader& m, IntentRecord* r) {
  HANDOFF_RETURN_IF_ERROR(ReadId(m, &r->id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("intent_type", &r->intent_type));
  HANDOFF_RETURN_IF_ERROR(m.OptString("from_agent", &r->from_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("to_agent", &r->to_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("correlation_id", &r->correlation_id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("parent_id", &r->parent_id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("origin_node", &r->origin_node));
  HANDOFF_RETURN_IF_ERROR(m.OptString("target_node", &r->target_node));
  HANDOFF_RETURN_IF_ERROR(m.OptUint("remote_seq", &r->remote_seq));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("lease_ms", &r->lease_ms));
  HANDOFF_RETURN_IF_ERROR(ReadStatus(m, "status", &r->status));
  HANDOFF_RETURN_IF_ERROR(m.OptString("waiting_reason", &r->waiting_reason));
  HANDOFF_RETURN_IF_ERROR(ReadUint32(m, "delivery_attempt", &r->delivery_attempt));
  HANDOFF_RETURN_IF_ERROR(m.OptBool("has_checkpoint", &r->has_checkpoint));
  std::optional<MapReader> error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("error", &error));
  if (error) {
    ErrorInfo info;
    HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*error, &info));
    r->error = std::move(info);
  }
  HANDOFF_RETURN_IF_ERROR(m.OptInt("created_at", &r->created_at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("updated_at", &r->updated_at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("deadline", &r->deadline_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptString("idempotency_key", &r->idempotency_key));
  HANDOFF_RETURN_IF_ERROR(m.OptString("reply_to", &r->reply_to));
  HANDOFF_RETURN_IF_ERROR(m.OptString("replay_of", &r->replay_of));
  std::optional<MapReader> approval;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("approval", &approval));
  if (approval) {
    Approval a;
    HANDOFF_RETURN_IF_ERROR(ReadApproval(*approval, &a));
    r->approval = std::move(a);
  }
  HANDOFF_RETURN_IF_ERROR(ReadUint32(m, "max_attempts", &r->max_attempts));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("retry_initial_ms", &r->retry_initial_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptDouble("retry_multiplier", &r->retry_multiplier));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("retry_max_ms", &r->retry_max_ms));
  std::optional<MapReader> last_error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("last_error", &last_error));
  if (last_error) {
    ErrorInfo info;
    HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*last_error, &info));
    r->last_error = std::move(info);
  }
  return ReadUint32(m, "seq", &r->seq);
}

Status ReadEventFields(const MapReader& m, EventRecord* e) {
  HANDOFF_RETURN_IF_ERROR(ReadId(m, &e->id));
  HANDOFF_RETURN_IF_ERROR(ReadUint32(m, "seq", &e->seq));
  HANDOFF_RETURN_IF_ERROR(m.OptString("event_type", &e->event_type));
  HANDOFF_RETURN_IF_ERROR(ReadStatus(m, "status", &e->status));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("at", &e->at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptString("node", &e->node));
  HANDOFF_RETURN_IF_ERROR(m.OptString("actor", &e->actor));
  if (const msgpack::object* details = m.Find("details")) e->details = Pack(*details);
  HANDOFF_RETURN_IF_ERROR(m.OptUint("audit_seq", &e->audit_seq));
  return Status::OK();
}

Result<IntentRecord> DecodeIntent(std::string_view bytes) {
  auto handle = Unpack(bytes);
  if (!handle.ok()) return Status::Corruption("intent record: " + handle.status().message());
  auto m = MapReader::From(handle->get(), "intent record");
  if (!m.ok()) return Status::Corruption(m.status().message());
  IntentRecord r;
  Status s = ReadIntentFields(*m, &r);
  if (!s.ok()) return Status::Corruption("intent record: " + s.message());
  return r;
}

Result<EventRecord> DecodeEvent(std::string_view bytes) {
  auto handle = Unpack(bytes);
  if (!handle.ok()) return Status::Corruption("event record: " + handle.status().message());
  auto m = MapReader::From(handle->get(), "event record");
  if (!m.ok()) return Status::Corruption(m.status().message());
  EventRecord e;
  Status s = ReadEventFields(*m, &e);
  if (!s.ok()) return Status::Corruption("event record: " + s.message());
  return e;
}

}  // namespace handoff
