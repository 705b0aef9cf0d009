// libFuzzer target: one frame from an agent connection, as the daemon reads it (the envelope,
// then every field reader a handler uses; a batch split into its messages), and as a client
// reads a reply or a batch of them; our decoder against msgpack-c's; and what IsPackedJson
// takes against the long way (Unpack, CheckJsonValue, Pack). Whatever the bytes,
// decoding returns a Status: no crash, no leak, no undefined behaviour, no unbounded memory.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/msgpack_io.h"
#include "base/records.h"
#include "client/convert.h"
#include "wire/agent_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff;
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  (void)PeekTopLevelUint(frame, "rid");
  // What IsPackedJson takes is kept as it came: the long way must take it and give back the
  // same bytes.
  if (IsPackedJson(frame)) {
    auto value = Unpack(frame);
    if (!value.ok() || !CheckJsonValue("v", value->get()).ok() || Pack(value->get()) != frame) {
      __builtin_trap();
    }
  }

  uint64_t rid = 0;
  auto request = wire::DecodeRequest(frame, &rid);
  if (request.ok()) {
    MapReader m = request->body();
    // The bytes the decoder noted for a field are the value MapReader finds there, and what
    // StoredJson keeps of them is what the long way stores.
    for (std::string_view key : {"payload", "result", "state", "rid", "op"}) {
      const auto bytes = request->handle.FieldBytes(key);
      const msgpack::object* found = m.Find(key);
      if (found != nullptr) {
        if (!bytes) __builtin_trap();
        auto again = Unpack(*bytes);
        if (!again.ok() || Pack(again->get()) != Pack(*found)) __builtin_trap();
        auto kept = StoredJson(key, *found, bytes);
        auto long_way = StoredJson(key, *found, std::nullopt);
        if (kept.ok() != long_way.ok() || (kept.ok() && *kept != *long_way)) __builtin_trap();
      }
    }
    // The readers the handlers use, on whatever fields are there.
    std::string text;
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    for (std::string_view key :
         {"intent_id", "intent_type", "to_agent", "payload", "state", "result", "lease_ms",
          "deadline", "retry_multiplier", "approval", "error", "outcomes", "limit", "attempt"}) {
      (void)m.OptString(key, &text);
      (void)m.OptUint(key, &u);
      (void)m.OptInt(key, &i);
      (void)m.OptDouble(key, &d);
      (void)m.OptBool(key, &b);
      if (const msgpack::object* o = m.Find(key)) {
        if (CheckJsonValue(key, *o).ok()) {
          // What passes the check is stored, and must be showable: the client's conversion.
          auto json = MsgpackToJson(*o);
          if (!json.ok()) __builtin_trap();
        }
      }
    }
    std::optional<MapReader> approval;
    if (m.OptMap("approval", &approval).ok() && approval) {
      Approval a;
      (void)ReadApproval(*approval, &a);
    }
    std::optional<MapReader> error;
    if (m.OptMap("error", &error).ok() && error) {
      ErrorInfo e;
      (void)ReadErrorInfo(*error, &e);
    }
    IntentRecord record;
    (void)ReadIntentFields(m, &record);
  }

  // A batch: split into its messages, each one within the frame.
  auto requests = wire::DecodeRequests(frame);
  if (requests.ok()) {
    if (requests->empty() || requests->size() > wire::kMaxBatchItems) __builtin_trap();
    for (const wire::FrameRequest& each : *requests) {
      if (each.bytes.data() < frame.data() ||
          each.bytes.data() + each.bytes.size() > frame.data() + frame.size()) {
        __builtin_trap();
      }
    }
  }
  auto replies = wire::DecodeReplies(frame);
  if (replies.ok() && (replies->empty() || replies->size() > wire::kMaxBatchItems))
    __builtin_trap();

  auto reply = wire::DecodeReply(frame);
  if (reply.ok()) {
    if (const msgpack::object* intent = reply->body().Find("intent")) (void)ReadIntent(*intent);
    if (const msgpack::object* event = reply->body().Find("event")) (void)ReadEvent(*event);
  }

  // Our decoder (DecodeTree, under Unpack) against msgpack-c's: both accept or both refuse, and
  // what they accept is the same value.
  auto ours = Unpack(frame);
  std::optional<std::string> reference;
  try {
    size_t offset = 0;
    const UnpackLimits limits;
    msgpack::unpack_limit limit(limits.max_container, limits.max_container, limits.max_string,
                                limits.max_string, limits.max_string, limits.max_depth);
    msgpack::object_handle h =
        msgpack::unpack(frame.data(), frame.size(), offset, nullptr, nullptr, limit);
    if (offset == frame.size()) reference = Pack(h.get());
  } catch (const std::exception&) {
  }
  if (ours.ok() != reference.has_value()) __builtin_trap();
  if (ours.ok() && Pack(ours->get()) != *reference) __builtin_trap();
  return 0;
}
