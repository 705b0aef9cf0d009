// The compact forms of peer messages (docs/protocol.md, "Compact messages"): a forwarded intent
// and an update as the elements of an array body, written and read.

#include "wire/compact_messages.h"

#include "base/names.h"
#include "wire/agent_protocol.h"
#include "wire/peer_protocol.h"

namespace handoff::wire {

namespace {

// The compact update's elements, in this order (docs/protocol.md, "Compact messages"). A newer
// node may add elements after them, which this one passes over.
enum CompactUpdate : uint32_t {
  kCuId,
  kCuRemoteSeq,
  kCuStatus,
  kCuDeliveryAttempt,
  kCuWaitingReason,
  kCuError,
  kCuLastError,
  kCuApproval,
  kCuHasCheckpoint,
  kCuCheckpoint,
  kCuResult,
  kCuEvents,
  kCuElements,
};
// Each event's elements; the intent id is the update's and the node its sender.
enum CompactEvent : uint32_t {
  kCeSeq,
  kCeEventType,
  kCeStatus,
  kCeAt,
  kCeActor,
  kCeDetails,
  kCeElements,
};

// The elements of one compact array, each read by position and named in errors.
class ElementReader {
 public:
  static Result<ElementReader> From(const msgpack::object& o, std::string_view what,
                                    uint32_t at_least) {
    if (o.type != msgpack::type::ARRAY) {
      return Status::InvalidArgument(std::string(what) + " must be a msgpack array, not " +
                                     std::string(MsgTypeName(o)));
    }
    if (o.via.array.size < at_least) {
      return Status::InvalidArgument(std::string(what) + " has " +
                                     std::to_string(o.via.array.size) + " elements, fewer than " +
                                     std::to_string(at_least));
    }
    return ElementReader(o.via.array);
  }

  const msgpack::object& at(uint32_t i) const { return a_.ptr[i]; }

  Status Uint(uint32_t i, std::string_view name, uint64_t max, uint64_t* out) const {
    const msgpack::object& o = at(i);
    if (o.type != msgpack::type::POSITIVE_INTEGER) return WrongType(name, "an unsigned integer", o);
    if (o.via.u64 > max) {
      return Status::InvalidArgument("field '" + std::string(name) + "' is " +
                                     std::to_string(o.via.u64) + ", over the most it can be, " +
                                     std::to_string(max));
    }
    *out = o.via.u64;
    return Status::OK();
  }

  Status Int(uint32_t i, std::string_view name, int64_t* out) const {
    const msgpack::object& o = at(i);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      *out = o.via.i64;
    } else if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= INT64_MAX) {
      *out = static_cast<int64_t>(o.via.u64);
    } else {
      return WrongType(name, "an integer", o);
    }
    return Status::OK();
  }

  Status Double(uint32_t i, std::string_view name, double* out) const {
    const msgpack::object& o = at(i);
    if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) {
      *out = o.via.f64;
    } else if (o.type == msgpack::type::POSITIVE_INTEGER) {
      *out = static_cast<double>(o.via.u64);
    } else {
      return WrongType(name, "a number", o);
    }
    return Status::OK();
  }

  Status String(uint32_t i, std::string_view name, std::string* out) const {
    const msgpack::object& o = at(i);
    if (o.type != msgpack::type::STR) return WrongType(name, "a string", o);
    out->assign(o.via.str.ptr, o.via.str.size);
    return Status::OK();
  }

  Status IntentStatusAt(uint32_t i, std::string_view name, IntentStatus* out) const {
    uint64_t n = 0;
    HANDOFF_RETURN_IF_ERROR(Uint(i, name, kIntentStatusCount - 1, &n));
    *out = static_cast<IntentStatus>(n);
    return Status::OK();
  }

  // nil: none; else a map read by `read`.
  template <typename T, typename ReadFn>
  Status OptMap(uint32_t i, std::string_view name, ReadFn read, std::optional<T>* out) const {
    const msgpack::object& o = at(i);
    if (o.type == msgpack::type::NIL) return Status::OK();
    HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(o, name));
    T value;
    HANDOFF_RETURN_IF_ERROR(read(m, &value));
    *out = std::move(value);
    return Status::OK();
  }

  // nil: none; else a bin holding one encoded JSON-like value, kept as those bytes.
  Status OptEncoded(uint32_t i, std::string_view name, std::string* out) const {
    const msgpack::object& o = at(i);
    if (o.type == msgpack::type::NIL) return Status::OK();
    if (o.type != msgpack::type::BIN) return WrongType(name, "a bin", o);
    const std::string_view bytes(o.via.bin.ptr, o.via.bin.size);
    if (IsPackedJson(bytes)) {  // as a node writes it: checked without a tree
      out->assign(bytes);
      return Status::OK();
    }
    auto value = Unpack(bytes);
    if (!value.ok()) {
      return Status::InvalidArgument(std::string(name) + ": " + value.status().message());
    }
    HANDOFF_RETURN_IF_ERROR(CheckJsonValue(name, value->get()));
    out->assign(bytes);
    return Status::OK();
  }

 private:
  explicit ElementReader(const msgpack::object_array& a) : a_(a) {}
  const msgpack::object_array& a_;
};

// The compact intent's elements, in this order: what a destination takes from a forwarded
// intent (Engine::AcceptRemoteIntent) and checks (PeerService::CheckIntent).
enum CompactIntent : uint32_t {
  kCiId,
  kCiIntentType,
  kCiFromAgent,
  kCiToAgent,
  kCiCorrelationId,
  kCiParentId,
  kCiReplayOf,
  kCiOriginNode,
  kCiTargetNode,
  kCiLeaseMs,
  kCiDeadline,
  kCiMaxAttempts,
  kCiRetryInitialMs,
  kCiRetryMultiplier,
  kCiRetryMaxMs,
  kCiCreatedAt,
  kCiApproval,
  kCiPayload,
  kCiCheckpoint,
  kCiElements,
};

}  // namespace

Status ReadCompactId(const msgpack::object& o, IntentId* id) {
  if (o.type != msgpack::type::BIN) return WrongType("intent_id", "a bin", o);
  auto parsed = IntentId::FromBytes(std::string_view(o.via.bin.ptr, o.via.bin.size));
  if (!parsed.ok()) return Status::InvalidArgument("intent_id: not 16 bytes");
  *id = *parsed;
  return Status::OK();
}

Result<RemoteUpdate> ReadCompactUpdateBody(const msgpack::object& body, std::string_view from) {
  HANDOFF_ASSIGN_OR_RETURN(ElementReader r,
                           ElementReader::From(body, "a compact update", kCuElements));
  RemoteUpdate u;
  HANDOFF_RETURN_IF_ERROR(ReadCompactId(r.at(kCuId), &u.id));
  HANDOFF_RETURN_IF_ERROR(r.Uint(kCuRemoteSeq, "remote_seq", UINT64_MAX, &u.remote_seq));
  HANDOFF_RETURN_IF_ERROR(r.IntentStatusAt(kCuStatus, "status", &u.status));
  uint64_t attempt = 0;
  HANDOFF_RETURN_IF_ERROR(r.Uint(kCuDeliveryAttempt, "delivery_attempt", UINT32_MAX, &attempt));
  u.delivery_attempt = static_cast<uint32_t>(attempt);
  HANDOFF_RETURN_IF_ERROR(r.String(kCuWaitingReason, "waiting_reason", &u.waiting_reason));
  HANDOFF_RETURN_IF_ERROR(r.OptMap(kCuError, "error", ReadErrorInfo, &u.error));
  HANDOFF_RETURN_IF_ERROR(r.OptMap(kCuLastError, "last_error", ReadErrorInfo, &u.last_error));
  HANDOFF_RETURN_IF_ERROR(r.OptMap(kCuApproval, "approval", ReadApproval, &u.approval));
  const msgpack::object& has_checkpoint = r.at(kCuHasCheckpoint);
  if (has_checkpoint.type != msgpack::type::BOOLEAN) {
    return WrongType("has_checkpoint", "a boolean", has_checkpoint);
  }
  u.has_checkpoint = has_checkpoint.via.boolean;
  HANDOFF_RETURN_IF_ERROR(r.OptEncoded(kCuCheckpoint, "checkpoint", &u.checkpoint));
  HANDOFF_RETURN_IF_ERROR(r.OptEncoded(kCuResult, "result", &u.result));
  const msgpack::object& events = r.at(kCuEvents);
  if (events.type != msgpack::type::ARRAY) return WrongType("events", "an array", events);
  u.events.reserve(events.via.array.size);
  for (const msgpack::object& item : events.via.array) {
    HANDOFF_ASSIGN_OR_RETURN(ElementReader er,
                             ElementReader::From(item, "an update's event", kCeElements));
    EventRecord& e = u.events.emplace_back();
    e.id = u.id;
    e.node.assign(from);
    uint64_t seq = 0;
    HANDOFF_RETURN_IF_ERROR(er.Uint(kCeSeq, "events.seq", UINT32_MAX, &seq));
    e.seq = static_cast<uint32_t>(seq);
    HANDOFF_RETURN_IF_ERROR(er.String(kCeEventType, "events.event_type", &e.event_type));
    HANDOFF_RETURN_IF_ERROR(er.IntentStatusAt(kCeStatus, "events.status", &e.status));
    HANDOFF_RETURN_IF_ERROR(er.Int(kCeAt, "events.at", &e.at_ms));
    HANDOFF_RETURN_IF_ERROR(er.String(kCeActor, "events.actor", &e.actor));
    const msgpack::object& details = er.at(kCeDetails);
    if (details.type == msgpack::type::MAP) {
      HANDOFF_RETURN_IF_ERROR(CheckJsonValue("events.details", details));
      e.details = Pack(details);
    } else if (details.type != msgpack::type::NIL) {
      return WrongType("events.details", "a map", details);
    }
  }
  if (u.events.empty()) return Status::InvalidArgument("update without an event");
  return u;
}

Status ReadCompactIntentBody(const msgpack::object& body, IntentRecord* r,
                             const msgpack::object** payload, const msgpack::object** checkpoint) {
  HANDOFF_ASSIGN_OR_RETURN(ElementReader e,
                           ElementReader::From(body, "a compact intent", kCiElements));
  HANDOFF_RETURN_IF_ERROR(ReadCompactId(e.at(kCiId), &r->id));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiIntentType, "intent_type", &r->intent_type));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiFromAgent, "from_agent", &r->from_agent));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiToAgent, "to_agent", &r->to_agent));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiCorrelationId, "correlation_id", &r->correlation_id));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiParentId, "parent_id", &r->parent_id));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiReplayOf, "replay_of", &r->replay_of));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiOriginNode, "origin_node", &r->origin_node));
  HANDOFF_RETURN_IF_ERROR(e.String(kCiTargetNode, "target_node", &r->target_node));
  HANDOFF_RETURN_IF_ERROR(e.Int(kCiLeaseMs, "lease_ms", &r->lease_ms));
  HANDOFF_RETURN_IF_ERROR(e.Int(kCiDeadline, "deadline", &r->deadline_ms));
  uint64_t max_attempts = 0;
  HANDOFF_RETURN_IF_ERROR(e.Uint(kCiMaxAttempts, "max_attempts", UINT32_MAX, &max_attempts));
  r->max_attempts = static_cast<uint32_t>(max_attempts);
  HANDOFF_RETURN_IF_ERROR(e.Int(kCiRetryInitialMs, "retry_initial_ms", &r->retry_initial_ms));
  HANDOFF_RETURN_IF_ERROR(e.Double(kCiRetryMultiplier, "retry_multiplier", &r->retry_multiplier));
  HANDOFF_RETURN_IF_ERROR(e.Int(kCiRetryMaxMs, "retry_max_ms", &r->retry_max_ms));
  HANDOFF_RETURN_IF_ERROR(e.Int(kCiCreatedAt, "created_at", &r->created_at_ms));
  HANDOFF_RETURN_IF_ERROR(e.OptMap(kCiApproval, "approval", ReadApproval, &r->approval));
  r->status = IntentStatus::kSubmitted;  // as the origin forwards it
  *payload = &e.at(kCiPayload);
  const msgpack::object& c = e.at(kCiCheckpoint);
  *checkpoint = c.type == msgpack::type::NIL ? nullptr : &c;
  return Status::OK();
}

size_t WriteCompactIntent(MsgWriter& w, const IntentRecord& r, std::string_view payload,
                          std::string_view checkpoint) {
  w.Reserve(512 + payload.size() + checkpoint.size());
  // In CompactIntent's order.
  w.Bin(r.id.bytes());
  w.String(r.intent_type);
  w.String(r.from_agent);
  w.String(r.to_agent);
  w.String(r.correlation_id);
  w.String(r.parent_id);
  w.String(r.replay_of);
  w.String(r.origin_node);
  w.String(r.target_node);
  w.Int(r.lease_ms);
  w.Int(r.deadline_ms);
  w.Uint(r.max_attempts);
  w.Int(r.retry_initial_ms);
  w.Double(r.retry_multiplier);
  w.Int(r.retry_max_ms);
  w.Int(r.created_at_ms);
  if (r.approval) {
    WriteApproval(w, *r.approval);
  } else {
    w.Nil();
  }
  const size_t payload_at = w.size();
  w.Raw(payload);
  w.Raw(checkpoint);  // nil when there is none
  return payload_at;
}

void WriteCompactUpdate(MsgWriter& w, const RemoteUpdate& u) {
  // In CompactUpdate's order.
  w.Bin(u.id.bytes());
  w.Uint(u.remote_seq);
  w.Uint(static_cast<uint64_t>(u.status));
  w.Uint(u.delivery_attempt);
  w.String(u.waiting_reason);
  for (const std::optional<ErrorInfo>* error : {&u.error, &u.last_error}) {
    if (*error) {
      WriteErrorInfo(w, **error);
    } else {
      w.Nil();
    }
  }
  if (u.approval) {
    WriteApproval(w, *u.approval);
  } else {
    w.Nil();
  }
  w.Bool(u.has_checkpoint);
  for (const std::string* encoded : {&u.checkpoint, &u.result}) {
    if (encoded->empty()) {
      w.Nil();
    } else {
      w.Bin(*encoded);
    }
  }
  w.BeginArray();
  for (const EventRecord& e : u.events) {
    w.BeginArray();  // in CompactEvent's order
    w.Uint(e.seq);
    w.String(e.event_type);
    w.Uint(static_cast<uint64_t>(e.status));
    w.Int(e.at_ms);
    w.String(e.actor);
    w.Raw(e.details);  // nil when there are none
    w.EndArray();
  }
  w.EndArray();
}

}  // namespace handoff::wire
