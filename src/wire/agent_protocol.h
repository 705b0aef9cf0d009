// Agent protocol v2: the messages between an agent (client) and its local handoffd.
//
// Each ZeroMQ message is one frame holding one msgpack map, or (version 2) a batch: one
// msgpack array of such maps, each handled as if it had come alone (docs/protocol.md is the
// full reference). Requests carry "v" (protocol version), "op" and "rid" (a request id the reply
// echoes); replies carry "v", "rid" and "ok", plus "error" {code, message} when ok is false;
// deliveries pushed by the daemon carry "push": "deliver" instead of "rid". A client that sends
// "v": 2 reads batches: what the daemon sends in answer to such a request may come in one.
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

// The newest version this build speaks (requests may say 1 or 2), and the version every reply
// and push says: version 2 added batches and changed no message.
inline constexpr uint64_t kAgentProtocolVersion = 2;
inline constexpr uint64_t kMessageVersion = 1;
// Most messages one batch carries, either way.
inline constexpr size_t kMaxBatchItems = 1024;
// The daemon closes a batch it is filling at this many messages or bytes (one larger message
// goes alone). Smaller than a batch may be: a client starts on the first batch while the next
// is on its way, which kept round trips/s level where one batch of a whole window lost a tenth
// (docs/performance.md, "Batches").
inline constexpr size_t kSendBatchItems = 64;
inline constexpr size_t kMaxBatchBytes = 1 << 20;

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
  Decoded handle;
  std::string op;
  uint64_t rid = 0;
  uint64_t version = 1;  // the request's "v": 2 says its sender reads batches
  MapReader body() const { return *MapReader::From(handle.get(), "request"); }
};

// Decodes and checks the envelope. On failure `*rid` holds the request id if the frame had a
// readable one (so the error reply can still be matched), else 0.
Result<Request> DecodeRequest(std::string_view frame, uint64_t* rid);

// True when a frame holds a batch (starts with a msgpack array) rather than one message.
bool IsBatch(std::string_view frame);
// The number of messages a frame carries, read from its first bytes: a batch's length, else 1.
size_t MessagesIn(std::string_view frame);

// One request of a frame: its bytes, and the request or the error to answer it with (`rid`
// is then its request id if readable, else 0).
struct FrameRequest {
  std::string_view bytes;
  Result<Request> request;
  uint64_t rid = 0;
};
// Every request of a frame, in order: the one of a message, or each of a batch. A batch that
// cannot be split into messages (not an array of 1 to kMaxBatchItems well-formed values) is an
// error for the whole frame: nothing of it is handled.
Result<std::vector<FrameRequest>> DecodeRequests(std::string_view frame);

// A batch frame of already encoded messages (each one msgpack map).
std::string EncodeBatch(const std::vector<std::string_view>& messages);

// Builds a request: envelope fields first, then the caller's fields, then Finish(). A client
// that reads batches says version 2.
class RequestBuilder {
 public:
  RequestBuilder(std::string_view op, uint64_t rid, uint64_t version = kMessageVersion);
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
  Decoded handle;
  uint64_t rid = 0;
  std::string push;  // non-empty for pushes ("deliver")
  Status status;     // the error of an ok:false reply
  MapReader body() const { return *MapReader::From(handle.get(), "reply"); }
};
Result<Reply> DecodeReply(std::string_view frame);
// Every reply and push of a frame, in order: one for a message, each message of a batch.
Result<std::vector<Reply>> DecodeReplies(std::string_view frame);

// An intent as the protocol carries it: the record's fields plus "payload", "checkpoint" and
// "result" (each one msgpack value, nil when absent). Written as one map.
void WriteIntent(MsgWriter& w, const IntentRecord& record, std::string_view payload,
                 std::string_view checkpoint, std::string_view result);

// Reads an "error" map {code, message}. Codes travel as names (status.h, CodeName); a name this
// version does not know becomes an IOError whose message keeps the name.
Status ReadError(const MapReader& error);

}  // namespace handoff::wire

#endif  // HANDOFF_WIRE_AGENT_PROTOCOL_H_
