// Peer protocol: the messages between two handoffd nodes (docs/protocol.md, "Peer
// protocol").
//
// One ZeroMQ frame holds one msgpack map: {v, kind, from, seq, body}, or a batch: a msgpack
// array of such maps, sent only to a node whose pings and acks say `batches: true`. `from` is the
// sending node's name; `seq` numbers the data messages (intent, update, control) on one direction
// of one link, from 1, without gaps. `ack` carries `acked`: every data message up to that seq has
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
#include <vector>

#include "base/msgpack_io.h"
#include "base/records.h"
#include "handoff/status.h"

namespace handoff::wire {

// Version 2: an update carries every event one turn at the destination recorded for an intent
// (`events`), where version 1 carried one (`event`).
// Version 3: links are CURVE-encrypted and authenticated by default (docs/security.md); a
// DEALER sets no routing id, and the receiver knows the sender by its key; a message is applied
// only if it is the sender's to send (node/peer_service.h). The messages are those of version 2.
// A node reads versions 1 to 3 and writes 3; older nodes refuse 3 (and cannot do CURVE), so
// upgrade every node of a cluster together.
// Within version 3, a node whose pings and acks say `compact_messages: true` also reads
// compact intents and updates, whose body is an array (WriteCompactIntent,
// WriteCompactUpdate); a link sends any other node the same message as a map (VerboseFrame). A
// node that does not read them refuses the frame before applying anything (its body is not a
// map), so a message sent to it compact is sent again, never passed over.
inline constexpr uint64_t kPeerProtocolVersion = 3;
inline constexpr uint64_t kOldestPeerProtocolVersion = 1;

namespace peer_kind {
inline constexpr std::string_view kPing = "ping";        // sender -> receiver: say where we are
inline constexpr std::string_view kAck = "ack";          // receiver -> sender: applied up to
inline constexpr std::string_view kIntent = "intent";    // origin -> destination: a new intent
inline constexpr std::string_view kUpdate = "update";    // destination -> origin: events
inline constexpr std::string_view kControl = "control";  // origin -> destination: cancel
}  // namespace peer_kind

bool IsDataKind(std::string_view kind);

// Most messages, and bytes, a link puts in one batch (at least one message whatever its size).
inline constexpr size_t kMaxPeerBatchItems = 1024;
inline constexpr size_t kMaxPeerBatchBytes = 1 << 20;

// What a node reads beyond the messages of its version, as its pings and acks say.
struct PeerFeatures {
  bool batches = false;           // several messages to a frame (a msgpack array of them)
  bool compact_messages = false;  // intents and updates whose body is an array
};

// Everything this node reads.
inline constexpr PeerFeatures kOurPeerFeatures{/*batches=*/true, /*compact_messages=*/true};

struct PeerMessage {
  Decoded handle;
  std::string kind;
  std::string from;
  uint64_t seq = 0;       // data messages
  uint64_t acked = 0;     // ack
  uint64_t boot = 0;      // ping, ack
  PeerFeatures features;  // ping, ack: what the sender reads
  // Data messages: a map, or for an intent or update an array (the compact form).
  const msgpack::object* body = nullptr;
};

// Decodes and checks a peer frame (version, kind, sender name, seq for data kinds).
Result<PeerMessage> DecodePeerMessage(std::string_view frame);
// Every message of a frame: the one of a message, or each of a batch, in order. A batch that
// cannot be split (not 1 to kMaxPeerBatchItems values) or holds one bad message is refused
// whole: its sender sends it again, one message at a time if need be.
Result<std::vector<PeerMessage>> DecodePeerMessages(std::string_view frame);

// Builds a data message; write the body's fields (or, for an array body, its elements)
// through w(), then Finish().
class PeerMessageBuilder {
 public:
  enum class Body { kMap, kArray };
  PeerMessageBuilder(std::string_view kind, std::string_view from, uint64_t seq,
                     Body body = Body::kMap);
  MsgWriter& w() { return w_; }
  std::string Finish();

 private:
  MsgWriter w_;
  Body body_;
};

// `features`: what this node reads (tests play older nodes with less).
std::string EncodePeerAck(std::string_view from, uint64_t boot, uint64_t acked,
                          PeerFeatures features = kOurPeerFeatures);
std::string EncodePeerPing(std::string_view from, uint64_t boot);

// Events that happened at the destination of a forwarded intent, with the state the last one
// left.
struct RemoteUpdate {
  IntentId id;
  uint64_t remote_seq = 0;          // the last event's seq at the destination
  std::vector<EventRecord> events;  // in the order recorded; at least one
  IntentStatus status = IntentStatus::kSubmitted;
  uint32_t delivery_attempt = 0;
  std::string waiting_reason;
  std::optional<ErrorInfo> error;
  std::optional<ErrorInfo> last_error;
  std::optional<Approval> approval;
  bool has_checkpoint = false;
  std::string checkpoint;  // encoded value when one of the events saved one, else empty
  std::string result;      // encoded value when the events completed the intent, else empty
};

// The update as a map's fields, the form every node reads.
void WriteRemoteUpdate(MsgWriter& w, const RemoteUpdate& u);
// The update as the elements of an array body (PeerMessageBuilder::Body::kArray), for a node
// that says `compact_messages`: no field names, the id as its 16 bytes, statuses as their
// numbers, each event an array without the intent id and node (the update's, and its
// sender's), a checkpoint or result as its encoding in a bin. docs/protocol.md has the layout.
void WriteCompactUpdate(MsgWriter& w, const RemoteUpdate& u);
// Reads either form; `from` is the node that sent it, where each event was recorded.
Result<RemoteUpdate> ReadRemoteUpdate(const msgpack::object& body, std::string_view from);

// A forwarded intent as the elements of an array body, for a node that says
// `compact_messages`: the fields a destination takes from it (AcceptRemoteIntent) at their
// places, the id as its 16 bytes, the payload and checkpoint embedded. docs/protocol.md has
// the layout. Returns where in `w` the payload begins (a nil when `payload` is empty, which
// an outbox entry stored without its payload fills in: storage::OutboxPayload).
size_t WriteCompactIntent(MsgWriter& w, const IntentRecord& r, std::string_view payload,
                          std::string_view checkpoint);
// Reads an intent message's body, either form: the record's fields, and its payload and
// checkpoint (nullptr: none) as values within `body`, unchecked. `r->id` is set as soon as it
// is read, so that a message refused for another field can still be answered.
Status ReadForwardedIntent(const msgpack::object& body, IntentRecord* r,
                           const msgpack::object** payload, const msgpack::object** checkpoint);

// The intent a data message is about, in either form (for logs); nullopt if it names none.
std::optional<IntentId> IntentOf(const PeerMessage& msg);

// For a node that does not read compact messages: `frame` (one message) rewritten with its
// intent or update as a map, or nullopt when it holds no compact one (send it as it is).
Result<std::optional<std::string>> VerboseFrame(std::string_view frame);

}  // namespace handoff::wire

#endif  // HANDOFF_WIRE_PEER_PROTOCOL_H_
