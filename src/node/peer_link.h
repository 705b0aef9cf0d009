// PeerLink: the sending half of this node's link to one peer.
//
// Data messages for the peer are written to the outbox (in the same transaction as the change
// they carry) and numbered per link. The link sends them in order over a DEALER and keeps what
// the peer has acknowledged (cumulative acks). Anything sent but not acknowledged within the
// retransmission timeout is sent again from the first unacknowledged message (go-back-N), the
// timeout doubling from retransmit_initial up to retransmit_max; when the peer is heard from
// again after a silence, everything unacknowledged goes out at once. The outbox entries are
// deleted only once acknowledged, so a restart of either node resends what the peer has not
// applied, and the peer's in-order apply drops what it already has.
//
// A ping every peer_heartbeat asks the peer for an ack; a peer silent for three heartbeats is
// reported as disconnected.
//
// With CURVE the DEALER proves this node's key and checks that the peer proves one of the keys
// listed for it. A socket monitor reports each handshake: one that fails marks the link
// auth_failed (with what to do, logged once until a handshake succeeds) and the link connects
// again after a backoff (ZeroMQ itself gives up on a refused handshake), with the peer's next
// key when several are listed.
//
// Thread safety: none; the loop thread only.

#ifndef HANDOFF_NODE_PEER_LINK_H_
#define HANDOFF_NODE_PEER_LINK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "handoff/status.h"
#include "net/curve_keys.h"
#include "net/sockets.h"
#include "node/options.h"
#include "storage/store.h"
#include "wire/peer_protocol.h"

namespace handoff::node {

class PeerLink {
 public:
  // Most messages, and bytes, sent and not yet acknowledged (at least one message goes out
  // whatever its size).
  static constexpr uint64_t kWindow = 4096;
  static constexpr uint64_t kWindowBytes = uint64_t{64} << 20;
  // Most bytes one pass of the loop puts on the wire (at least one message): a link catching
  // up with its window does not hold up the rest of the node.
  static constexpr uint64_t kBurstBytes = uint64_t{8} << 20;
  // ZeroMQ's queue for the link, in messages: a peer that stops reading stops the link there.
  static constexpr int kSendHwm = 1024;

  // `boot` identifies this run of this node (see peer_protocol.h). `keys` is this node's key
  // pair, or null for plaintext (peer_security = "none"); it must outlive the link.
  PeerLink(std::string self, uint64_t boot, PeerOptions peer, const NodeOptions& options,
           const net::CurveKeyPair* keys);

  // Connects the DEALER and loads the link's position from the store.
  Status Open(zmq::context_t& context, storage::Store& store);
  // Reads what the socket monitor reported about handshakes since the last call.
  void PollHandshakes(int64_t now);

  const std::string& name() const { return peer_.name; }
  const std::string& endpoint() const { return peer_.endpoint; }
  net::Dealer& dealer() { return *dealer_; }

  // The outbox now holds messages up to `seq` (after a commit that wrote some).
  void Assigned(uint64_t seq);
  // The peer (in its run `boot`) applied everything up to `acked`; `features`: what it reads
  // (with batches, messages go to it several to a frame; without compact messages, intents
  // and updates go to it as maps).
  void OnAck(uint64_t acked, uint64_t boot, wire::PeerFeatures features, int64_t now);
  // Begins a read of the outbox as the loop sees it (what is durable, applied to LMDB or not).
  using BeginView = std::function<Result<storage::Txn>()>;
  // Sends what is due: a ping, a retransmission, messages not yet sent.
  void Pump(storage::Store& store, const BeginView& view, int64_t now);
  // When Pump next has something to do.
  int64_t NextWakeMs(int64_t now) const;

  // Outbox entries up to here may be deleted; false once they are.
  bool NeedsTrim() const { return acked_ > trimmed_; }
  // Deleting acknowledged entries rides along with the next write; it is worth a commit of
  // its own only once many have piled up or the oldest waited a while.
  bool TrimDue(int64_t now) const {
    return NeedsTrim() &&
           (acked_ - trimmed_ >= kTrimBatch || now - trim_pending_since_ms_ >= kTrimDelayMs);
  }
  uint64_t acked() const { return acked_; }
  // The last seq whose outbox entry is deleted, or nullopt when some before it may not be
  // (a commit that deleted them failed): the next trim starts from the first entry held.
  std::optional<uint64_t> trimmed() const {
    return trim_from_first_ ? std::nullopt : std::optional<uint64_t>(trimmed_);
  }
  void Trimmed(uint64_t upto) {
    trimmed_ = upto;
    trim_from_first_ = false;
  }
  // A commit failed: what it deleted is still there.
  void TrimFailed() { trim_from_first_ = true; }

  bool connected(int64_t now) const;
  // A handshake failed since the last one that succeeded: the link is down for a reason only
  // an operator can fix, said by auth_error().
  bool auth_failed() const { return !auth_error_.empty(); }
  const std::string& auth_error() const { return auth_error_; }
  uint64_t auth_failures() const { return auth_failures_; }
  // The key the DEALER expects the peer to prove (empty without CURVE).
  std::string server_key() const { return keys_ ? peer_.public_keys[key_index_] : std::string(); }
  int64_t last_heard_ms() const { return last_heard_ms_; }
  uint64_t pending() const { return assigned_ - acked_; }
  uint64_t retransmissions() const { return retransmissions_; }
  uint64_t sent() const { return sent_; }
  uint64_t frames_sent() const { return frames_sent_; }
  // What the peer's latest ack said it reads (nothing beyond its version before one came).
  wire::PeerFeatures peer_features() const { return peer_features_; }
  // Compact intents and updates rewritten as maps for a peer that does not read them.
  uint64_t rewritten() const { return rewritten_; }
  uint64_t in_flight_bytes() const { return in_flight_bytes_; }

 private:
  static constexpr uint64_t kTrimBatch = 1024;
  static constexpr int64_t kTrimDelayMs = 1000;

  void SendFrom(storage::Store& store, const BeginView& view, int64_t now);
  // Forgets what was in flight up to `acked` (or everything, to send it again).
  void ForgetInFlight(uint64_t acked);
  // A handshake failed with `why`: mark the link, log it once, drop the connection and plan the
  // next attempt (with the peer's next key when several are listed).
  void OnHandshakeFailed(const std::string& why, int64_t now);
  // What to tell the operator when the peer refused this node's key (ZAP `code`), when the
  // handshake failed with ZMTP protocol error `code`, and when the peer closed it at once.
  std::string RefusedWhy(int code) const;
  std::string ProtocolWhy(int code) const;
  std::string ClosedWhy() const;

  std::string self_;
  uint64_t boot_;
  PeerOptions peer_;
  int64_t heartbeat_ms_;
  int64_t rto_initial_ms_;
  int64_t rto_max_ms_;
  const net::CurveKeyPair* keys_;  // null: plaintext
  std::unique_ptr<net::Dealer> dealer_;
  std::unique_ptr<net::SocketMonitor> monitor_;  // declared after dealer_: destroyed first
  size_t key_index_ = 0;                         // into peer_.public_keys
  std::string auth_error_;                       // empty: no failure since the last success
  std::string logged_error_;                     // the last error logged, to log each once
  uint64_t auth_failures_ = 0;
  // Sizes of the messages in flight, oldest first, and their sum: the byte window.
  std::deque<std::pair<uint64_t, uint64_t>> in_flight_;
  uint64_t in_flight_bytes_ = 0;
  // Counts the connections ZeroMQ dropped (their queued messages with them). Messages sent on
  // a connection that is still up are still on their way, so a retransmission timeout resends
  // them only if the connection changed since, or the peer answered without acknowledging them.
  uint64_t connection_epoch_ = 0;
  uint64_t round_epoch_ = 0;     // the epoch when the oldest unacknowledged message was sent
  int fast_closes_ = 0;          // handshakes the peer closed quickly since the last success
  int64_t connected_at_ms_ = 0;  // the last TCP connect
  int64_t reconnect_at_ms_ = 0;  // after a refused handshake: connect again then; 0: no plan
  int64_t auth_backoff_ms_;      // the wait before the next such attempt

  uint64_t assigned_ = 0;              // last seq in the outbox
  uint64_t acked_ = 0;                 // last seq the peer applied
  uint64_t trimmed_ = 0;               // outbox entries up to here are deleted
  bool trim_from_first_ = false;       // unless a failed commit left some (trimmed())
  int64_t trim_pending_since_ms_ = 0;  // when acked_ first passed trimmed_
  uint64_t next_send_ = 1;             // next seq to put on the wire
  int64_t rto_ms_;
  int64_t last_progress_ms_ = 0;  // last ack progress, or first send after a quiet link
  int64_t last_heard_ms_ = 0;     // 0: never
  // Whether the link was last seen up, and since when (for the log's "up for", "down for").
  bool up_ = false;
  int64_t up_or_down_since_ms_ = 0;
  uint64_t peer_boot_ = 0;            // the peer's run we last heard from; 0: none yet
  wire::PeerFeatures peer_features_;  // its latest ack's
  int64_t next_ping_ms_ = 0;
  int64_t blocked_until_ms_ = 0;  // the socket refused a send (no connection): retry then
  uint64_t retransmissions_ = 0;
  uint64_t sent_ = 0;         // data messages put on the wire, retransmissions included
  uint64_t frames_sent_ = 0;  // the frames that carried them (fewer: batches)
  uint64_t rewritten_ = 0;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_PEER_LINK_H_
