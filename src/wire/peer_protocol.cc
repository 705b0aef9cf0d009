#include "wire/peer_protocol.h"

#include "base/names.h"
#include "wire/agent_protocol.h"
#include "wire/compact_messages.h"

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

Status ReadForwardedIntent(const msgpack::object& body, IntentRecord* r,
                           const msgpack::object** payload, const msgpack::object** checkpoint) {
  *payload = *checkpoint = nullptr;
  if (body.type == msgpack::type::ARRAY) return ReadCompactIntentBody(body, r, payload, checkpoint);
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(body, "body"));
  std::optional<MapReader> intent;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("intent", &intent));
  if (!intent) return Status::InvalidArgument("intent message without an intent");
  Status read = ReadIntentFields(*intent, r);
  *payload = intent->Find("payload");
  *checkpoint = intent->Find("checkpoint");
  return read;
}

std::optional<IntentId> IntentOf(const PeerMessage& msg) {
  if (msg.body == nullptr) return std::nullopt;
  IntentId id;
  if (msg.body->type == msgpack::type::ARRAY) {  // compact: the id comes first
    const msgpack::object_array& a = msg.body->via.array;
    if (a.size == 0 || !ReadCompactId(a.ptr[0], &id).ok()) return std::nullopt;
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
    HANDOFF_ASSIGN_OR_RETURN(RemoteUpdate u, ReadCompactUpdateBody(*msg.body, msg.from));
    WriteRemoteUpdate(verbose.w(), u);
  } else {  // an intent (DecodePeerMessage takes no other kind with an array body)
    IntentRecord r;
    const msgpack::object *payload = nullptr, *checkpoint = nullptr;
    HANDOFF_RETURN_IF_ERROR(ReadCompactIntentBody(*msg.body, &r, &payload, &checkpoint));
    verbose.w().Key("intent");
    WriteIntent(verbose.w(), r, Pack(*payload), checkpoint ? Pack(*checkpoint) : std::string(), {});
  }
  return std::optional<std::string>(verbose.Finish());
}

Result<RemoteUpdate> ReadRemoteUpdate(const msgpack::object& body, std::string_view from) {
  if (body.type == msgpack::type::ARRAY) return ReadCompactUpdateBody(body, from);
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
