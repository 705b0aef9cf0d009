// Agent protocol v1: the messages between an agent (client) and its local handoffd.
//
// Each ZeroMQ message is one frame holding one msgpack map (docs/protocol.md is the full
// reference). Requests carry "v" (protocol version), "op" and "rid" (a request id the reply
// echoes); replies carry "v", "rid" and "ok", plus "error" {code, message} when ok is false;
// deliveries pushed by the daemon carry "push": "deliver" instead of "rid".
//
// This file encodes and decodes envelopes and the shared records; it knows nothing of sockets
// or storage. Thread safety: pure functions and single-owner builders.

#ifndef HANDOFF_WIRE_AGENT_PROTOCOL_H_
#define HANDOFF_WIRE_AGENT_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/msgpack_io.h"
#include "base/records.h"
#include "handoff/status.h"

namespace handoff::wire {

inline constexpr uint64_t kAgentProtocolVersion = 1;

// Operation names ("op").
namespace op {
inline constexpr std::string_view kHello = "hello";
inline constexpr std::string_view kSend = "send";
inline constexpr std::string_view kGet = "get";
inline constexpr std::string_view kEvents = "events";
inline constexpr std::string_view kWait = "wait";
inline constexpr std::string_view kList = "list";
inline constexpr std::string_view kCancel = "cancel";
inline constexpr std::string_view kReceive = "receive";
inline constexpr std::string_view kAck = "ack";
inline constexpr std::string_view kHeartbeat = "heartbeat";
inline constexpr std::string_view kCheckpoint = "checkpoint";
inline constexpr std::string_view kComplete = "complete";
inline constexpr std::string_view kFail = "fail";
inline constexpr std::string_view kStatus = "status";
inline constexpr std::string_view kReplay = "replay";
inline constexpr std::string_view kPurge = "purge";
inline constexpr std::string_view kApprove = "approve";
inline constexpr std::string_view kReject = "reject";
inline constexpr std::string_view kRequestApproval = "request_approval";
inline constexpr std::string_view kAudit = "audit";
inline constexpr std::string_view kAgents = "agents";
inline constexpr std::string_view kPause = "pause";
inline constexpr std::string_view kResume = "resume";
}  // namespace op

inline constexpr std::string_view kPushDeliver = "deliver";

// A decoded request; it owns its decoded tree.
struct Request {
  msgpack::object_handle handle;
  std::string op;
  uint64_t rid = 0;
  MapReader body() const { return *MapReader::From(handle.get(), "request"); }
};

// Decodes and checks the envelope. On failure `*rid` holds the request id if the frame had a
// readable one (so the error reply can still be matched), else 0.
Result<Request> DecodeRequest(std::string_view frame, uint64_t* rid);

// Builds a request: envelope fields first, then the caller's fields, then Finish().
class RequestBuilder {
 public:
  RequestBuilder(std::string_view op, uint64_t rid);
  MsgWriter& w() { return w_; }
  std::string Finish();

 private:
  MsgWriter w_;
};

// Builds a successful reply.
class ReplyBuilder {
 public:
  explicit ReplyBuilder(uint64_t rid);
  MsgWriter& w() { return w_; }
  std::string Finish();

 private:
  MsgWriter w_;
};

std::string EncodeErrorReply(uint64_t rid, const Status& status);

// A decoded reply or push, as a client sees it.
struct Reply {
  msgpack::object_handle handle;
  uint64_t rid = 0;
  std::string push;  // non-empty for pushes ("deliver")
  Status status;     // the error of an ok:false reply
  MapReader body() const { return *MapReader::From(handle.get(), "reply"); }
};
Result<Reply> DecodeReply(std::string_view frame);

// An intent as the protocol carries it: the record's fields plus "payload", "checkpoint" and
// "result" (each one msgpack value, nil when absent). Written as one map.
void WriteIntent(MsgWriter& w, const IntentRecord& record, std::string_view payload,
                 std::string_view checkpoint, std::string_view result);

// Reads an "error" map {code, message}. Codes travel as names (status.h, CodeName); a name this
// version does not know becomes an IOError whose message keeps the name.
Status ReadError(const MapReader& error);

}  // namespace handoff::wire

#endif  // HANDOFF_WIRE_AGENT_PROTOCOL_H_
