#include "node/peer_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "wire/peer_protocol.h"

namespace handoff::node {
namespace {

constexpr int64_t kBlockedRetryMs = 100;
constexpr size_t kReadChunk = 256;

}  // namespace

PeerLink::PeerLink(std::string self, uint64_t boot, PeerOptions peer, const NodeOptions& options)
    : self_(std::move(self)),
      boot_(boot),
      peer_(std::move(peer)),
      heartbeat_ms_(options.peer_heartbeat_ms),
      rto_initial_ms_(options.retransmit_initial_ms),
      rto_max_ms_(options.retransmit_max_ms),
      rto_ms_(options.retransmit_initial_ms) {}

Status PeerLink::Open(zmq::context_t& context, storage::Store& store) {
  net::SocketOptions socket;
  socket.immediate = true;
  socket.heartbeat_ms = static_cast<int>(heartbeat_ms_);
  socket.reconnect_max_ms = static_cast<int>(std::max<int64_t>(heartbeat_ms_, 100));
  HANDOFF_ASSIGN_OR_RETURN(dealer_, net::Dealer::Connect(context, peer_.endpoint, self_, socket));

  HANDOFF_ASSIGN_OR_RETURN(storage::Txn txn, store.BeginRead());
  HANDOFF_ASSIGN_OR_RETURN(assigned_, store.GetLinkCounter(txn, "out/" + peer_.name));
  std::vector<storage::OutboxEntry> first;
  HANDOFF_RETURN_IF_ERROR(store.ReadOutbox(txn, peer_.name, 0, 1, &first));
  // Everything before the oldest entry still held was acknowledged in an earlier run.
  acked_ = first.empty() ? assigned_ : first.front().seq - 1;
  trimmed_ = acked_;
  next_send_ = acked_ + 1;
  if (assigned_ > acked_) {
    spdlog::info("link to {}: {} message(s) from an earlier run await acknowledgement; resending",
                 peer_.name, assigned_ - acked_);
  }
  return Status::OK();
}

void PeerLink::Assigned(uint64_t seq) { assigned_ = std::max(assigned_, seq); }

bool PeerLink::connected(int64_t now) const {
  return last_heard_ms_ != 0 && now - last_heard_ms_ < 3 * heartbeat_ms_;
}

void PeerLink::OnAck(uint64_t acked, uint64_t boot, int64_t now) {
  // Silent for three heartbeats, or a new run of the peer: either way whatever was in flight
  // was probably lost.
  const bool was_down = !connected(now) || boot != peer_boot_;
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
    last_progress_ms_ = now;
    rto_ms_ = rto_initial_ms_;
  }
  if (was_down) {
    spdlog::info("link to {} is up; {} message(s) unacknowledged", peer_.name, assigned_ - acked_);
    next_send_ = acked_ + 1;  // send it again now, not after a retransmission timeout
    blocked_until_ms_ = 0;
  }
  next_send_ = std::max(next_send_, acked_ + 1);
}

void PeerLink::Pump(storage::Store& store, const BeginView& view, int64_t now) {
  if (now >= next_ping_ms_) {
    next_ping_ms_ = now + heartbeat_ms_;
    Status s = dealer_->Send(wire::EncodePeerPing(self_, boot_));
    if (!s.ok()) blocked_until_ms_ = now + kBlockedRetryMs;
  }
  const bool in_flight = next_send_ > acked_ + 1;
  if (in_flight && now - last_progress_ms_ >= rto_ms_) {
    retransmissions_ += next_send_ - 1 - acked_;
    spdlog::debug("link to {}: no ack for {} ms; resending from #{}", peer_.name, rto_ms_,
                  acked_ + 1);
    next_send_ = acked_ + 1;
    rto_ms_ = std::min(rto_ms_ * 2, rto_max_ms_);
    last_progress_ms_ = now;
    blocked_until_ms_ = 0;
  }
  if (now >= blocked_until_ms_) SendFrom(store, view, now);
}

void PeerLink::SendFrom(storage::Store& store, const BeginView& view, int64_t now) {
  const uint64_t last = std::min(assigned_, acked_ + kWindow);
  if (next_send_ > last) return;
  auto txn = view();
  if (!txn.ok()) {
    spdlog::error("link to {}: cannot read the outbox: {}", peer_.name, txn.status().ToString());
    return;
  }
  while (next_send_ <= last) {
    std::vector<storage::OutboxEntry> entries;
    size_t want = static_cast<size_t>(std::min<uint64_t>(last - next_send_ + 1, kReadChunk));
    Status s = store.ReadOutbox(*txn, peer_.name, next_send_, want, &entries);
    if (!s.ok() || entries.empty() || entries.front().seq != next_send_) {
      if (!s.ok()) spdlog::error("link to {}: reading the outbox: {}", peer_.name, s.ToString());
      return;
    }
    for (const storage::OutboxEntry& e : entries) {
      if (!dealer_->Send(e.frame).ok()) {
        blocked_until_ms_ = now + kBlockedRetryMs;  // not connected, or its queue is full
        return;
      }
      if (next_send_ == acked_ + 1) last_progress_ms_ = now;  // the retransmit clock starts
      next_send_ = e.seq + 1;
      ++sent_;
    }
  }
}

int64_t PeerLink::NextWakeMs(int64_t now) const {
  int64_t next = next_ping_ms_;
  if (NeedsTrim()) next = std::min(next, trim_pending_since_ms_ + kTrimDelayMs);
  if (next_send_ > acked_ + 1) next = std::min(next, last_progress_ms_ + rto_ms_);
  if (next_send_ <= std::min(assigned_, acked_ + kWindow)) {
    next = std::min(next, std::max(now, blocked_until_ms_));
  }
  return next;
}

}  // namespace handoff::node
