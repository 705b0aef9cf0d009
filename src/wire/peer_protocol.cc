#include "wire/peer_protocol.h"

#include "base/names.h"
#include "wire/agent_protocol.h"

namespace handoff::wire {

bool IsDataKind(std::string_view kind) {
  return kind == peer_kind::kIntent || kind == peer_kind::kUpdate || kind == peer_kind::kControl;
}

namespace {

Result<PeerMessage> ReadPeerMessage(Decoded handle) {
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(handle.get(), "a peer message"));
  uint64_t version = 0;
  HANDOFF_RETURN_IF_ERROR(m.Uint("v", &version));
  if (version < kOldestPeerProtocolVersion || version > kPeerProtocolVersion) {
    return Status::InvalidArgument("unsupported peer protocol version " + std::to_string(version) +
                                   "; this handoffd speaks versions " +
                                   std::to_string(kOldestPeerProtocolVersion) + " to " +
                                   std::to_string(kPeerProtocolVersion));
  }
  PeerMessage msg;
  HANDOFF_RETURN_IF_ERROR(m.String("kind", &msg.kind));
  HANDOFF_RETURN_IF_ERROR(m.String("from", &msg.from));
  HANDOFF_RETURN_IF_ERROR(ValidateNodeName(msg.from));
  if (IsDataKind(msg.kind)) {
    HANDOFF_RETURN_IF_ERROR(m.Uint("seq", &msg.seq));
    if (msg.seq == 0) return Status::InvalidArgument("data message with seq 0");
    const msgpack::object* body = m.Find("body");
    const bool compact = (msg.kind == peer_kind::kUpdate || msg.kind == peer_kind::kIntent) &&
                         body != nullptr && body->type == msgpack::type::ARRAY;
    if (body == nullptr || (body->type != msgpack::type::MAP && !compact)) {
      return Status::InvalidArgument("data message without a body map");
    }
    msg.body = body;
  } else if (msg.kind == peer_kind::kAck || msg.kind == peer_kind::kPing) {
    if (msg.kind == peer_kind::kAck) HANDOFF_RETURN_IF_ERROR(m.Uint("acked", &msg.acked));
    HANDOFF_RETURN_IF_ERROR(m.OptUint("boot", &msg.boot));
    HANDOFF_RETURN_IF_ERROR(m.OptBool("batches", &msg.features.batches));
    HANDOFF_RETURN_IF_ERROR(m.OptBool("compact_messages", &msg.features.compact_messages));
  } else {
    return Status::InvalidArgument("unknown peer message kind " + Quoted(msg.kind));
  }
  msg.handle = std::move(handle);
  // The body pointer stays valid: moving the handle keeps its arena.
  return msg;
}

}  // namespace

Result<PeerMessage> DecodePeerMessage(std::string_view frame) {
  HANDOFF_ASSIGN_OR_RETURN(Decoded handle, Unpack(frame));
  return ReadPeerMessage(std::move(handle));
}

Result<std::vector<PeerMessage>> DecodePeerMessages(std::string_view frame) {
  std::vector<PeerMessage> out;
  if (!ArrayLength(frame)) {
    HANDOFF_ASSIGN_OR_RETURN(PeerMessage msg, DecodePeerMessage(frame));
    out.push_back(std::move(msg));
    return out;
  }
  HANDOFF_ASSIGN_OR_RETURN(std::vector<UnpackedItem> items, UnpackBatch(frame, kMaxPeerBatchItems));
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto msg = ReadPeerMessage(std::move(items[i].handle));
    if (!msg.ok()) {
      return Status::InvalidArgument("message " + std::to_string(i) +
                                     " of a batch: " + msg.status().message());
    }
    out.push_back(std::move(msg).value());
  }
  return out;
}

PeerMessageBuilder::PeerMessageBuilder(std::string_view kind, std::string_view from, uint64_t seq,
                                       Body body)
    : body_(body) {
  w_.BeginMap();
  w_.Field("v", kPeerProtocolVersion);
  w_.Field("kind", kind);
  w_.Field("from", from);
  w_.Field("seq", seq);
  w_.Key("body");
  if (body_ == Body::kArray) {
    w_.BeginArray();
  } else {
    w_.BeginMap();
  }
}

std::string PeerMessageBuilder::Finish() {
  if (body_ == Body::kArray) {
    w_.EndArray();
  } else {
    w_.EndMap();
  }
  w_.EndMap();
  return w_.Release();
}

namespace {

void WriteFeatures(MsgWriter& w, PeerFeatures features) {
  if (features.batches) w.Field("batches", true);
  if (features.compact_messages) w.Field("compact_messages", true);
}

}  // namespace

std::string EncodePeerAck(std::string_view from, uint64_t boot, uint64_t acked,
                          PeerFeatures features) {
  MsgWriter w;
  w.BeginMap();
  w.Field("v", kPeerProtocolVersion);
  w.Field("kind", peer_kind::kAck);
  w.Field("from", from);
  w.Field("boot", boot);
  w.Field("acked", acked);
  WriteFeatures(w, features);
  w.EndMap();
  return w.Release();
}

std::string EncodePeerPing(std::string_view from, uint64_t boot) {
  MsgWriter w;
  w.BeginMap();
  w.Field("v", kPeerProtocolVersion);
  w.Field("kind", peer_kind::kPing);
  w.Field("from", from);
  w.Field("boot", boot);
  WriteFeatures(w, kOurPeerFeatures);
  w.EndMap();
  return w.Release();
}

void WriteRemoteUpdate(MsgWriter& w, const RemoteUpdate& u) {
  w.Field("intent_id", u.id.ToText().view());
  w.Field("remote_seq", u.remote_seq);
  w.Key("events");
  w.BeginArray();
  for (const EventRecord& e : u.events) {
    w.BeginMap();
    WriteEventFields(w, e);
    w.EndMap();
  }
  w.EndArray();
  w.Field("status", IntentStatusName(u.status));
  w.Field("delivery_attempt", u.delivery_attempt);
  if (!u.waiting_reason.empty()) w.Field("waiting_reason", u.waiting_reason);
  if (u.error) {
    w.Key("error");
    WriteErrorInfo(w, *u.error);
  }
  if (u.last_error) {
    w.Key("last_error");
    WriteErrorInfo(w, *u.last_error);
  }
  if (u.approval) {
    w.Key("approval");
    WriteApproval(w, *u.approval);
  }
  w.Field("has_checkpoint", u.has_checkpoint);
  if (!u.checkpoint.empty()) w.FieldRaw("checkpoint", u.checkpoint);
  if (!u.result.empty()) w.FieldRaw("result", u.result);
}

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

// A compact message's intent id: its 16 bytes in a bin.
Status ReadId(const msgpack::object& o, IntentId* id) {
  if (o.type != msgpack::type::BIN) return WrongType("intent_id", "a bin", o);
  auto parsed = IntentId::FromBytes(std::string_view(o.via.bin.ptr, o.via.bin.size));
  if (!parsed.ok()) return Status::InvalidArgument("intent_id: not 16 bytes");
  *id = *parsed;
  return Status::OK();
}

Result<RemoteUpdate> ReadCompactUpdate(const msgpack::object& body, std::string_view from) {
  HANDOFF_ASSIGN_OR_RETURN(ElementReader r,
                           ElementReader::From(body, "a compact update", kCuElements));
  RemoteUpdate u;
  HANDOFF_RETURN_IF_ERROR(ReadId(r.at(kCuId), &u.id));
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

Status ReadCompactIntent(const msgpack::object& body, IntentRecord* r,
                         const msgpack::object** payload, const msgpack::object** checkpoint) {
  HANDOFF_ASSIGN_OR_RETURN(ElementReader e,
                           ElementReader::From(body, "a compact intent", kCiElements));
  HANDOFF_RETURN_IF_ERROR(ReadId(e.at(kCiId), &r->id));
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

}  // namespace

void WriteCompactIntent(MsgWriter& w, const IntentRecord& r, std::string_view payload,
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
  w.Raw(payload);
  w.Raw(checkpoint);  // nil when there is none
}

Status ReadForwardedIntent(const msgpack::object& body, IntentRecord* r,
                           const msgpack::object** payload, const msgpack::object** checkpoint) {
  *payload = *checkpoint = nullptr;
  if (body.type == msgpack::type::ARRAY) return ReadCompactIntent(body, r, payload, checkpoint);
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(body, "body"));
  std::optional<MapReader> intent;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("intent", &intent));
  if (!intent) return Status::InvalidArgument("intent message without an intent");
  Status read = ReadIntentFields(*intent, r);
  *payload = intent->Find("payload");
  *checkpoint = intent->Find("checkpoint");
  return read;
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

std::optional<IntentId> IntentOf(const PeerMessage& msg) {
  if (msg.body == nullptr) return std::nullopt;
  IntentId id;
  if (msg.body->type == msgpack::type::ARRAY) {  // compact: the id comes first
    const msgpack::object_array& a = msg.body->via.array;
    if (a.size == 0 || !ReadId(a.ptr[0], &id).ok()) return std::nullopt;
    return id;
  }
  auto body = MapReader::From(*msg.body, "body");
  if (!body.ok()) return std::nullopt;
  std::string text;
  std::optional<MapReader> intent;
  if (body->OptMap("intent", &intent).ok() && intent) {
    (void)intent->OptString("intent_id", &text);
  } else {
    (void)body->OptString("intent_id", &text);
  }
  auto parsed = IntentId::Parse(text);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

Result<std::optional<std::string>> VerboseFrame(std::string_view frame) {
  HANDOFF_ASSIGN_OR_RETURN(PeerMessage msg, DecodePeerMessage(frame));
  if (msg.body == nullptr || msg.body->type != msgpack::type::ARRAY) {
    return std::optional<std::string>();
  }
  PeerMessageBuilder verbose(msg.kind, msg.from, msg.seq);
  if (msg.kind == peer_kind::kUpdate) {
    HANDOFF_ASSIGN_OR_RETURN(RemoteUpdate u, ReadCompactUpdate(*msg.body, msg.from));
    WriteRemoteUpdate(verbose.w(), u);
  } else {  // an intent (DecodePeerMessage takes no other kind with an array body)
    IntentRecord r;
    const msgpack::object *payload = nullptr, *checkpoint = nullptr;
    HANDOFF_RETURN_IF_ERROR(ReadCompactIntent(*msg.body, &r, &payload, &checkpoint));
    verbose.w().Key("intent");
    WriteIntent(verbose.w(), r, Pack(*payload), checkpoint ? Pack(*checkpoint) : std::string(), {});
  }
  return std::optional<std::string>(verbose.Finish());
}

Result<RemoteUpdate> ReadRemoteUpdate(const msgpack::object& body, std::string_view from) {
  if (body.type == msgpack::type::ARRAY) return ReadCompactUpdate(body, from);
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(body, "an update"));
  RemoteUpdate u;
  std::string_view id, status;
  HANDOFF_RETURN_IF_ERROR(m.StringView("intent_id", &id));
  HANDOFF_ASSIGN_OR_RETURN(u.id, IntentId::Parse(id));
  HANDOFF_RETURN_IF_ERROR(m.Uint("remote_seq", &u.remote_seq));
  if (const msgpack::object* events = m.Find("events")) {
    if (events->type != msgpack::type::ARRAY) return WrongType("events", "an array", *events);
    for (const msgpack::object& item : events->via.array) {
      HANDOFF_ASSIGN_OR_RETURN(MapReader event, MapReader::From(item, "an update's event"));
      if (const msgpack::object* details = event.Find("details")) {
        HANDOFF_RETURN_IF_ERROR(CheckJsonValue("events.details", *details));
      }
      HANDOFF_RETURN_IF_ERROR(ReadEventFields(event, &u.events.emplace_back()));
    }
  } else {
    std::optional<MapReader> event;  // version 1: one event
    HANDOFF_RETURN_IF_ERROR(m.OptMap("event", &event));
    if (event) {
      if (const msgpack::object* details = event->Find("details")) {
        HANDOFF_RETURN_IF_ERROR(CheckJsonValue("event.details", *details));
      }
      HANDOFF_RETURN_IF_ERROR(ReadEventFields(*event, &u.events.emplace_back()));
    }
  }
  if (u.events.empty()) return Status::InvalidArgument("update without an event");
  HANDOFF_RETURN_IF_ERROR(m.StringView("status", &status));
  auto parsed = ParseIntentStatus(status);
  if (!parsed) {
    return Status::InvalidArgument("update with unknown status '" + std::string(status) + "'");
  }
  u.status = *parsed;
  uint64_t attempt = 0;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("delivery_attempt", &attempt));
  u.delivery_attempt = static_cast<uint32_t>(attempt);
  HANDOFF_RETURN_IF_ERROR(m.OptString("waiting_reason", &u.waiting_reason));
  std::optional<MapReader> error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("error", &error));
  if (error) {
    ErrorInfo info;
    HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*error, &info));
    u.error = std::move(info);
  }
  std::optional<MapReader> last_error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("last_error", &last_error));
  if (last_error) {
    ErrorInfo info;
    HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*last_error, &info));
    u.last_error = std::move(info);
  }
  std::optional<MapReader> approval;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("approval", &approval));
  if (approval) {
    Approval a;
    HANDOFF_RETURN_IF_ERROR(ReadApproval(*approval, &a));
    u.approval = std::move(a);
  }
  HANDOFF_RETURN_IF_ERROR(m.OptBool("has_checkpoint", &u.has_checkpoint));
  if (const msgpack::object* c = m.Find("checkpoint")) {
    HANDOFF_RETURN_IF_ERROR(CheckJsonValue("checkpoint", *c));
    u.checkpoint = Pack(*c);
  }
  if (const msgpack::object* r = m.Find("result")) {
    HANDOFF_RETURN_IF_ERROR(CheckJsonValue("result", *r));
    u.result = Pack(*r);
  }
  return u;
}

}  // namespace handoff::wire
