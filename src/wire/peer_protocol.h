// Peer protocol v1: the messages between two handoffd nodes (docs/protocol.md, "Peer
// protocol").
//
// One ZeroMQ frame holds one msgpack map: {v, kind, from, seq, body}. `from` is the sending
// node's name; `seq` numbers the data messages (intent, update, control) on one direction of
// one link, from 1, without gaps. `ack` carries `acked`: every data message up to that seq has
// been applied and committed by the receiver. `ping` asks for an ack. Pings and acks carry
// `boot`, a number drawn at random when a node starts, so a peer that restarted is recognised
// at its first word, however quickly it came back.
//
// Thread safety: pure functions and single-owner builders.

#ifndef HANDOFF_WIRE_PEER_PROTOCOL_H_
#define HANDOFF_WIRE_PEER_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/msgpack_io.h"
#include "base/records.h"
#include "handoff/status.h"

namespace handoff::wire {

inline constexpr uint64_t kPeerProtocolVersion = 1;

namespace peer_kind {
inline constexpr std::string_view kPing = "ping";        // sender -> receiver: say where we are
inline constexpr std::string_view kAck = "ack";          // receiver -> sender: applied up to
inline constexpr std::string_view kIntent = "intent";    // origin -> destination: a new intent
inline constexpr std::string_view kUpdate = "update";    // destination -> origin: an event
inline constexpr std::string_view kControl = "control";  // origin -> destination: cancel
}  // namespace peer_kind

bool IsDataKind(std::string_view kind);

struct PeerMessage {
  msgpack::object_handle handle;
  std::string kind;
  std::string from;
  uint64_t seq = 0;                       // data messages
  uint64_t acked = 0;                     // ack
  uint64_t boot = 0;                      // ping, ack
  const msgpack::object* body = nullptr;  // data messages: a map
};

// Decodes and checks a peer frame (version, kind, sender name, seq for data kinds).
Result<PeerMessage> DecodePeerMessage(std::string_view frame);

// Builds a data message; write the body's fields through w(), then Finish().
class PeerMessageBuilder {
 public:
  PeerMessageBuilder(std::string_view kind, std::string_view from, uint64_t seq);
  MsgWriter& w() { return w_; }
  std::string Finish();

 private:
  MsgWriter w_;
};

std::string EncodePeerAck(std::string_view from, uint64_t boot, uint64_t acked);
std::string EncodePeerPing(std::string_view from, uint64_t boot);

// An event that happened at the destination of a forwarded intent, with the state it left.
struct RemoteUpdate {
  IntentId id;
  uint64_t remote_seq = 0;  // the event's seq at the destination
  EventRecord event;
  IntentStatus status = IntentStatus::kSubmitted;
  uint32_t delivery_attempt = 0;
  std::string waiting_reason;
  std::optional<ErrorInfo> error;
  std::optional<ErrorInfo> last_error;
  std::optional<Approval> approval;
  bool has_checkpoint = false;
  std::string checkpoint;  // encoded value when this event saved one, else empty
  std::string result;      // encoded value when this event completed the intent, else empty
};

void WriteRemoteUpdate(MsgWriter& w, const RemoteUpdate& u);
Result<RemoteUpdate> ReadRemoteUpdate(const msgpack::object& body);

}  // namespace handoff::wire

#endif  // HANDOFF_WIRE_PEER_PROTOCOL_H_
