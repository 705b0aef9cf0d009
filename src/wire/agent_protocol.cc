#include "wire/agent_protocol.h"

namespace handoff::wire {
namespace {

// Reads "v" and checks it is one this build speaks, from `oldest` to kAgentProtocolVersion.
Result<uint64_t> CheckVersion(const MapReader& m, uint64_t oldest) {
  uint64_t version = 0;
  HANDOFF_RETURN_IF_ERROR(m.Uint("v", &version));
  if (version < oldest || version > kAgentProtocolVersion) {
    return Status::InvalidArgument(
        "unsupported protocol version " + std::to_string(version) + "; this handoffd speaks " +
        (oldest == kAgentProtocolVersion ? "version "
                                         : "versions " + std::to_string(oldest) + " to ") +
        std::to_string(kAgentProtocolVersion));
  }
  return version;
}

// The envelope of a decoded request.
Result<Request> ReadRequest(Decoded handle, uint64_t* rid) {
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(handle.get(), "a request"));
  Request request;
  // The rid comes first so that every later error can be matched to its request.
  HANDOFF_RETURN_IF_ERROR(m.OptUint("rid", &request.rid));
  *rid = request.rid;
  HANDOFF_ASSIGN_OR_RETURN(request.version, CheckVersion(m, 1));
  HANDOFF_RETURN_IF_ERROR(m.String("op", &request.op));
  request.handle = std::move(handle);
  return request;
}

Result<Reply> ReadReply(Decoded handle) {
  HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(handle.get(), "a reply"));
  HANDOFF_RETURN_IF_ERROR(CheckVersion(m, 1).status());
  Reply reply;
  HANDOFF_RETURN_IF_ERROR(m.OptString("push", &reply.push));
  if (reply.push.empty()) {
    HANDOFF_RETURN_IF_ERROR(m.Uint("rid", &reply.rid));
    bool ok = false;
    HANDOFF_RETURN_IF_ERROR(m.OptBool("ok", &ok));
    if (!ok) {
      std::optional<MapReader> error;
      HANDOFF_RETURN_IF_ERROR(m.OptMap("error", &error));
      reply.status = error ? ReadError(*error) : Status::IOError("error reply without an error");
    }
  }
  reply.handle = std::move(handle);
  return reply;
}

}  // namespace

Result<Request> DecodeRequest(std::string_view frame, uint64_t* rid) {
  *rid = 0;
  // Where its fields lie is noted: a payload, result or checkpoint is kept as it came
  // (Decoded::FieldBytes).
  auto unpacked = Unpack(frame, {}, KeepSpans::kYes);
  if (!unpacked.ok()) {
    // Too deep, too large or broken further on: its rid may still be readable, so that its
    // sender hears of the error now rather than waiting out its timeout.
    *rid = PeekTopLevelUint(frame, "rid").value_or(0);
    return unpacked.status();
  }
  return ReadRequest(std::move(unpacked).value(), rid);
}

bool IsBatch(std::string_view frame) { return ArrayLength(frame).has_value(); }

size_t MessagesIn(std::string_view frame) { return ArrayLength(frame).value_or(1); }

Result<std::vector<FrameRequest>> DecodeRequests(std::string_view frame) {
  std::vector<FrameRequest> out;
  if (!IsBatch(frame)) {
    uint64_t rid = 0;
    auto request = DecodeRequest(frame, &rid);
    out.push_back({frame, std::move(request), rid});
    return out;
  }
  HANDOFF_ASSIGN_OR_RETURN(std::vector<UnpackedItem> items,
                           UnpackBatch(frame, kMaxBatchItems, KeepSpans::kYes));
  out.reserve(items.size());
  for (UnpackedItem& item : items) {
    uint64_t rid = 0;
    auto request = ReadRequest(std::move(item.handle), &rid);
    out.push_back({item.bytes, std::move(request), rid});
  }
  return out;
}

std::string EncodeBatch(const std::vector<std::string_view>& messages) {
  return JoinArray(messages);
}

RequestBuilder::RequestBuilder(std::string_view op, uint64_t rid, uint64_t version) {
  w_.BeginMap();
  w_.Field("v", version);
  w_.Field("op", op);
  w_.Field("rid", rid);
}

std::string RequestBuilder::Finish() {
  w_.EndMap();
  return w_.Release();
}

ReplyBuilder::ReplyBuilder(uint64_t rid) {
  w_.BeginMap();
  w_.Field("v", kMessageVersion);
  w_.Field("rid", rid);
  w_.Field("ok", true);
}

std::string ReplyBuilder::Finish() {
  w_.EndMap();
  return w_.Release();
}

std::string EncodeErrorReply(uint64_t rid, const Status& status) {
  MsgWriter w;
  w.BeginMap();
  w.Field("v", kMessageVersion);
  w.Field("rid", rid);
  w.Field("ok", false);
  w.Key("error");
  w.BeginMap();
  w.Field("code", CodeName(status.code()));
  w.Field("message", status.message());
  w.EndMap();
  w.EndMap();
  return w.Release();
}

Status ReadError(const MapReader& error) {
  std::string code, message;
  HANDOFF_RETURN_IF_ERROR(error.OptString("code", &code));
  HANDOFF_RETURN_IF_ERROR(error.OptString("message", &message));
  auto parsed = CodeFromName(code);
  if (!parsed || *parsed == Code::kOk) return Status::IOError(code + ": " + message);
  return Status(*parsed, message);
}

Result<Reply> DecodeReply(std::string_view frame) {
  HANDOFF_ASSIGN_OR_RETURN(Decoded handle, Unpack(frame));
  return ReadReply(std::move(handle));
}

Result<std::vector<Reply>> DecodeReplies(std::string_view frame) {
  std::vector<Reply> out;
  if (!IsBatch(frame)) {
    HANDOFF_ASSIGN_OR_RETURN(Reply reply, DecodeReply(frame));
    out.push_back(std::move(reply));
    return out;
  }
  HANDOFF_ASSIGN_OR_RETURN(std::vector<UnpackedItem> items, UnpackBatch(frame, kMaxBatchItems));
  out.reserve(items.size());
  for (UnpackedItem& item : items) {
    HANDOFF_ASSIGN_OR_RETURN(Reply reply, ReadReply(std::move(item.handle)));
    out.push_back(std::move(reply));
  }
  return out;
}

void WriteIntent(MsgWriter& w, const IntentRecord& record, std::string_view payload,
                 std::string_view checkpoint, std::string_view result) {
  // Room for the record's fields (a few hundred bytes unless it carries long strings) and the
  // three blobs, so the encoding grows once rather than doubling its way past the payload.
  w.Reserve(1024 + payload.size() + checkpoint.size() + result.size());
  w.BeginMap();
  WriteIntentFields(w, record);
  w.FieldRaw("payload", payload);
  w.FieldRaw("checkpoint", checkpoint);
  w.FieldRaw("result", result);
  w.EndMap();
}

}  // namespace handoff::wire
