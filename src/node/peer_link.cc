#include "node/peer_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/units.h"
#include "wire/peer_protocol.h"

namespace handoff::node {
namespace {

constexpr int64_t kBlockedRetryMs = 100;
// After the outbox could not be read (a damaged entry): tried again, and logged, this often.
constexpr int64_t kReadRetryMs = 1000;
constexpr size_t kReadChunk = 256;
// A handshake the peer closes within this long of the TCP connect was refused, not timed out
// (ZeroMQ gives a handshake 30 s).
constexpr int64_t kQuickCloseMs = 5000;
// After a refused handshake the link connects again after this, doubling up to the max: soon
// enough to come up shortly after an operator fixes the keys, rare enough not to hammer a peer.
constexpr int64_t kAuthRetryInitialMs = 250;
constexpr int64_t kAuthRetryMaxMs = 5000;

}  // namespace

PeerLink::PeerLink(std::string self, uint64_t boot, PeerOptions peer, const NodeOptions& options,
                   const net::CurveKeyPair* keys)
    : self_(std::move(self)),
      boot_(boot),
      peer_(std::move(peer)),
      heartbeat_ms_(options.peer_heartbeat_ms),
      rto_initial_ms_(options.retransmit_initial_ms),
      rto_max_ms_(options.retransmit_max_ms),
      keys_(keys),
      auth_backoff_ms_(kAuthRetryInitialMs),
      rto_ms_(options.retransmit_initial_ms) {}

Status PeerLink::Open(zmq::context_t& context, storage::Store& store) {
  net::SocketOptions socket;
  socket.immediate = true;
  socket.send_hwm = kSendHwm;
  socket.heartbeat_ms = static_cast<int>(heartbeat_ms_);
  socket.reconnect_max_ms = static_cast<int>(std::max<int64_t>(heartbeat_ms_, 100));
  if (keys_ != nullptr) {
    if (peer_.public_keys.empty()) {
      return Status::InvalidArgument("peer " + peer_.name + " has no public_key");
    }
    socket.curve_public_key = keys_->public_key;
    socket.curve_secret_key = keys_->secret_key;
    socket.curve_server_key = peer_.public_keys[key_index_];
  }
  // No routing id: the peer's ROUTER names the connection itself, and knows this node by the
  // key it proved (or, without CURVE, by the `from` of its messages).
  HANDOFF_ASSIGN_OR_RETURN(dealer_, net::Dealer::Connect(context, peer_.endpoint, "", socket));
  HANDOFF_ASSIGN_OR_RETURN(monitor_, net::SocketMonitor::Attach(context, dealer_->socket()));

  HANDOFF_ASSIGN_OR_RETURN(storage::Txn txn, store.BeginRead());
  HANDOFF_ASSIGN_OR_RETURN(assigned_,
                           store.GetLinkCounter(txn, storage::Store::OutLinkCounter(peer_.name)));
  HANDOFF_ASSIGN_OR_RETURN(auto first, store.FirstOutbox(txn, peer_.name, 0));
  // Everything before the oldest entry still held was acknowledged in an earlier run.
  acked_ = first ? first->seq - 1 : assigned_;
  trimmed_ = acked_;
  next_send_ = acked_ + 1;
  if (assigned_ > acked_) {
    spdlog::info("link to {}: {} message(s) from an earlier run await acknowledgement; resending",
                 peer_.name, assigned_ - acked_);
  }
  return Status::OK();
}

void PeerLink::PollHandshakes(int64_t now) {
  using Kind = net::SocketEvent::Kind;
  for (const net::SocketEvent& e : monitor_->Take()) {
    // While a reconnect is planned the connection was dropped on purpose: what it reports
    // now is about the attempt already counted.
    const bool failure = e.kind == Kind::kHandshakeAuth || e.kind == Kind::kHandshakeProtocol ||
                         e.kind == Kind::kHandshakeNoDetail;
    if (failure && reconnect_at_ms_ != 0) continue;
    switch (e.kind) {
      case Kind::kConnected:
        connected_at_ms_ = now;
        break;
      case Kind::kHandshakeOk:
        if (!auth_error_.empty()) {
          spdlog::info("link to {}: handshake succeeded{}", peer_.name,
                       keys_ ? " with key " + server_key() : std::string());
        }
        auth_error_.clear();
        logged_error_.clear();
        fast_closes_ = 0;
        auth_backoff_ms_ = kAuthRetryInitialMs;
        break;
      case Kind::kHandshakeAuth:
        OnHandshakeFailed(RefusedWhy(e.value), now);
        break;
      case Kind::kHandshakeProtocol:
        OnHandshakeFailed(ProtocolWhy(e.value), now);
        break;
      case Kind::kHandshakeNoDetail:
        // The peer closed the connection during the handshake. A CURVE server does that at
        // once when our HELLO does not open with its secret key: the key listed for it here
        // is not its key. A handshake that merely timed out (a stalled peer) takes far longer.
        if (now - connected_at_ms_ > kQuickCloseMs) break;
        if (++fast_closes_ < 2 && peer_.public_keys.size() < 2) break;
        OnHandshakeFailed(ClosedWhy(), now);
        break;
      case Kind::kDisconnected:
        ++connection_epoch_;  // what ZeroMQ queued for it is gone
        break;
    }
  }
}

std::string PeerLink::RefusedWhy(int code) const {
  if (keys_ == nullptr) {
    return "node " + peer_.name + " refused the connection (code " + std::to_string(code) + ")";
  }
  return "node " + peer_.name + " refused this node's key " + keys_->public_key +
         ": add this key to [[peers]] on node " + peer_.name + " (public_key in the entry named '" +
         self_ + "') and restart it";
}

std::string PeerLink::ProtocolWhy(int code) const {
  if (code != ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    return "handshake with node " + peer_.name + " failed: " + net::ProtocolErrorText(code);
  }
  if (keys_ == nullptr) {
    return "node " + peer_.name +
           " requires CURVE and this node has peer_security = \"none\": set the same "
           "peer_security on both nodes";
  }
  return "node " + peer_.name +
         " does not use CURVE (peer_security = \"none\" there?): set the same peer_security on "
         "both nodes";
}

std::string PeerLink::ClosedWhy() const {
  if (keys_ == nullptr) {
    return "node " + peer_.name +
           " closed the connection during the handshake: it probably requires CURVE "
           "(peer_security = \"curve\" there) while this node has peer_security = \"none\"; set "
           "the same peer_security on both nodes";
  }
  return "node " + peer_.name + " at " + peer_.endpoint +
         " closed the connection during the CURVE handshake: the key listed for it here (" +
         server_key() +
         ") is probably not its key; check with `handoffd --show-public-key` on "
         "node " +
         peer_.name;
}

void PeerLink::OnHandshakeFailed(const std::string& why, int64_t now) {
  ++auth_failures_;
  auth_error_ = why;
  if (why != logged_error_) {
    spdlog::error("link to {}: auth_failed: {}", peer_.name, why);
    logged_error_ = why;
  }
  // Listed with several keys while it rotates: it holds one of them; try the next.
  if (keys_ != nullptr) key_index_ = (key_index_ + 1) % peer_.public_keys.size();
  // ZeroMQ gives up on a connection whose handshake failed with a protocol error, and would
  // retry one that was closed with the key just left behind: take it from here.
  ++connection_epoch_;
  Status s = dealer_->Disconnect();
  if (!s.ok()) spdlog::error("link to {}: {}", peer_.name, s.ToString());
  reconnect_at_ms_ = now + auth_backoff_ms_;
  auth_backoff_ms_ = std::min(auth_backoff_ms_ * 2, kAuthRetryMaxMs);
}

void PeerLink::Assigned(uint64_t seq) { assigned_ = std::max(assigned_, seq); }

bool PeerLink::connected(int64_t now) const {
  return last_heard_ms_ != 0 && now - last_heard_ms_ < 3 * heartbeat_ms_;
}

void PeerLink::OnAck(uint64_t acked, uint64_t boot, wire::PeerFeatures features, int64_t now) {
  peer_features_ = features;
  // Down is Pump's verdict (three heartbeats of silence, judged after the loop read what came
  // in), not this ack's age: a loop that was busy for a while finds acks waiting that the peer
  // sent in time.
  const bool restarted = peer_boot_ != 0 && boot != peer_boot_;
  const bool came_up = !up_ || restarted;
  peer_boot_ = boot;
  last_heard_ms_ = now;
  if (acked > assigned_) {
    spdlog::error(
        "node {} acknowledges message {} but this node wrote only {} to it: was this "
        "node's data directory replaced? Ignoring the ack",
        peer_.name, acked, assigned_);
    return;
  }
  if (acked > acked_) {
    if (!NeedsTrim()) trim_pending_since_ms_ = now;
    acked_ = acked;
    ForgetInFlight(acked_);
    last_progress_ms_ = now;
    rto_ms_ = rto_initial_ms_;
  }
  // What is in flight went out on a connection ZeroMQ has dropped since (and its queue with
  // it), or to a run of the peer that is gone: send it again now, not after a retransmission
  // timeout. Sent on the connection that is still up, it is on its way: sending it again after
  // a silence only doubles the load on a peer that was slow to answer (and made a slow peer
  // slower, resending up to the byte window each time it fell behind its heartbeats).
  const bool resend = next_send_ > acked_ + 1 && (restarted || round_epoch_ != connection_epoch_);
  if (came_up) {
    const uint64_t pending = assigned_ - acked_;
    const char* how = resend || next_send_ == acked_ + 1 ? "sending them" : "on their way";
    if (up_) {
      spdlog::info("link to {} is up: node {} restarted; {} message(s) unacknowledged, {}",
                   peer_.name, peer_.name, pending, how);
    } else if (up_or_down_since_ms_ == 0) {
      spdlog::info("link to {} is up; {} message(s) unacknowledged", peer_.name, pending);
    } else {
      spdlog::info("link to {} is up after {} down; {} message(s) unacknowledged, {}", peer_.name,
                   FormatDurationMs(now - up_or_down_since_ms_), pending, how);
    }
    up_ = true;
    up_or_down_since_ms_ = now;
  }
  if (resend) {
    next_send_ = acked_ + 1;
    ForgetInFlight(assigned_);
    blocked_until_ms_ = 0;
  }
  next_send_ = std::max(next_send_, acked_ + 1);
}

void PeerLink::Pump(storage::Store& store, const BeginView& view, int64_t now) {
  if (up_ && !connected(now)) {
    // Three heartbeats without a word: say so once, with what waits for the peer.
    spdlog::warn(
        "link to {} is down: nothing heard for {} (up for {}); {} message(s) wait for it in "
        "the outbox and go out when it is back",
        peer_.name, FormatDurationMs(now - last_heard_ms_),
        FormatDurationMs(last_heard_ms_ - up_or_down_since_ms_), assigned_ - acked_);
    up_ = false;
    up_or_down_since_ms_ = now;
  }
  if (reconnect_at_ms_ != 0 && now >= reconnect_at_ms_) {
    reconnect_at_ms_ = 0;
    Status s = dealer_->Reconnect(server_key());
    if (!s.ok()) spdlog::error("link to {}: {}", peer_.name, s.ToString());
  }
  if (now >= next_ping_ms_) {
    next_ping_ms_ = now + heartbeat_ms_;
    Status s = dealer_->Send(wire::EncodePeerPing(self_, boot_));
    if (!s.ok()) blocked_until_ms_ = now + kBlockedRetryMs;
  }
  const bool in_flight = next_send_ > acked_ + 1;
  if (in_flight && now - last_progress_ms_ >= rto_ms_ && round_epoch_ == connection_epoch_ &&
      last_heard_ms_ <= last_progress_ms_) {
    // Silent on the connection the messages went out on: they wait in its queues (the peer is
    // stalled), and copies would only pile up behind them. ZeroMQ's heartbeats drop the
    // connection if it stays silent; then they are sent again.
    last_progress_ms_ = now;
    rto_ms_ = std::min(rto_ms_ * 2, rto_max_ms_);
  } else if (in_flight && now - last_progress_ms_ >= rto_ms_) {
    retransmissions_ += next_send_ - 1 - acked_;
    spdlog::debug("link to {}: no ack for {} ms; resending from #{}", peer_.name, rto_ms_,
                  acked_ + 1);
    next_send_ = acked_ + 1;
    ForgetInFlight(assigned_);
    rto_ms_ = std::min(rto_ms_ * 2, rto_max_ms_);
    last_progress_ms_ = now;
    blocked_until_ms_ = 0;
  }
  if (now >= blocked_until_ms_) SendFrom(store, view, now);
}

void PeerLink::ForgetInFlight(uint64_t acked) {
  while (!in_flight_.empty() && in_flight_.front().first <= acked) {
    in_flight_bytes_ -= in_flight_.front().second;
    in_flight_.pop_front();
  }
}

void PeerLink::SendFrom(storage::Store& store, const BeginView& view, int64_t now) {
  const uint64_t last = std::min(assigned_, acked_ + kWindow);
  if (next_send_ > last) return;
  auto txn = view();
  if (!txn.ok()) {
    spdlog::error("link to {}: cannot read the outbox: {}", peer_.name, txn.status().ToString());
    return;
  }
  // At most a burst a pass, so that the loop goes on serving agents and reading acks while a
  // link catches up; it comes back at once for the rest (NextWakeMs).
  uint64_t burst = 0;
  while (next_send_ <= last && burst < kBurstBytes) {
    std::vector<storage::OutboxEntry> entries;
    size_t want = static_cast<size_t>(std::min<uint64_t>(last - next_send_ + 1, kReadChunk));
    // No more read than the byte window has room for (900 KiB messages, 256 at a time, made
    // a read of 225 MiB).
    const uint64_t room = std::min(
        kWindowBytes > in_flight_bytes_ ? kWindowBytes - in_flight_bytes_ : 1, kBurstBytes - burst);
    Status s = store.ReadOutbox(*txn, peer_.name, next_send_, want, &entries, room);
    if (!s.ok() || entries.empty() || entries.front().seq != next_send_) {
      if (!s.ok()) {
        spdlog::error("link to {}: reading the outbox at message {}: {}; trying again in {} ms",
                      peer_.name, next_send_, s.ToString(), kReadRetryMs);
        blocked_until_ms_ = now + kReadRetryMs;
      }
      return;
    }
    // Intents and updates are stored compact; a peer that has not said it reads them gets
    // them as maps.
    std::vector<std::string> rewritten;
    if (!peer_features_.compact_messages) {
      rewritten.reserve(entries.size());  // the views below stay put
      for (storage::OutboxEntry& e : entries) {
        auto verbose = wire::VerboseFrame(e.frame);
        if (!verbose.ok()) {
          // This node wrote it: a bug or a damaged disk. It goes as it is, never skipped: a
          // node from before compact messages refuses it undecoded, so the link waits on it,
          // logged here each time it is sent.
          spdlog::error("link to {}: message {} cannot be rewritten for the peer: {}", peer_.name,
                        e.seq, verbose.status().ToString());
          continue;
        }
        if (!*verbose) continue;
        e.frame = rewritten.emplace_back(std::move(**verbose));
        ++rewritten_;
      }
    }
    // The entries go out one frame each, or to a peer that reads batches, as many to a frame
    // as a batch holds.
    size_t i = 0;
    while (i < entries.size()) {
      size_t end = i, bytes = 0, window = in_flight_bytes_;
      while (end < entries.size()) {
        const size_t size = entries[end].frame.size();
        if (!(in_flight_.empty() && end == i) && window + size > kWindowBytes) break;
        if (end > i && (!peer_features_.batches || end - i >= wire::kMaxPeerBatchItems ||
                        bytes + size > wire::kMaxPeerBatchBytes)) {
          break;
        }
        bytes += size;
        window += size;
        ++end;
      }
      if (end == i) return;  // the byte window is full
      Status sent;
      if (end - i == 1) {
        sent = dealer_->Send(entries[i].frame);
      } else {
        std::vector<std::string_view> frames;
        frames.reserve(end - i);
        for (size_t k = i; k < end; ++k) frames.push_back(entries[k].frame);
        sent = dealer_->Send(JoinArray(frames));
      }
      if (!sent.ok()) {
        blocked_until_ms_ = now + kBlockedRetryMs;  // not connected, or its queue is full
        return;
      }
      ++frames_sent_;
      for (; i < end; ++i) {
        const storage::OutboxEntry& e = entries[i];
        if (next_send_ == acked_ + 1) {
          last_progress_ms_ = now;  // the retransmit clock starts
          round_epoch_ = connection_epoch_;
        }
        next_send_ = e.seq + 1;
        in_flight_.emplace_back(e.seq, e.frame.size());
        in_flight_bytes_ += e.frame.size();
        burst += e.frame.size();
        ++sent_;
      }
    }
  }
}

int64_t PeerLink::NextWakeMs(int64_t now) const {
  int64_t next = next_ping_ms_;
  if (reconnect_at_ms_ != 0) next = std::min(next, reconnect_at_ms_);
  if (NeedsTrim()) next = std::min(next, trim_pending_since_ms_ + kTrimDelayMs);
  if (next_send_ > acked_ + 1) next = std::min(next, last_progress_ms_ + rto_ms_);
  if (next_send_ <= std::min(assigned_, acked_ + kWindow)) {
    next = std::min(next, std::max(now, blocked_until_ms_));
  }
  return next;
}

}  // namespace handoff::node
