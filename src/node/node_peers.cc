// The peer half of Node: binding the peer endpoint, links to each peer, applying what peers
// send and acknowledging it, and reporting link health.

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "net/endpoint.h"
#include "node/node.h"
#include "wire/peer_protocol.h"

namespace handoff::node {

Status Node::OpenPeers() {
  net::SocketOptions socket;
  socket.max_message_bytes = static_cast<int64_t>(
      std::max<uint64_t>(uint64_t{64} << 20, 2 * options_.max_payload_bytes + (1 << 20)));
  socket.heartbeat_ms = static_cast<int>(options_.peer_heartbeat_ms);
  socket.handover = true;  // a peer that restarted takes its name back at once
  if (!options_.peer_endpoint.empty()) {
    HANDOFF_RETURN_IF_ERROR(net::PrepareIpcBind(options_.peer_endpoint));
    HANDOFF_ASSIGN_OR_RETURN(peers_in_,
                             net::Router::Bind(context_, options_.peer_endpoint, socket));
  }
  randombytes_buf(&boot_, sizeof(boot_));
  for (const PeerOptions& peer : options_.peers) {
    auto link = std::make_unique<PeerLink>(options_.name, boot_, peer, options_);
    HANDOFF_RETURN_IF_ERROR(link->Open(context_, *store_));
    links_.push_back(std::move(link));
  }
  return Status::OK();
}

void Node::DrainPeers(Inbound* in) {
  const int64_t now = options_.clock->NowMs();
  // Acks come back on each link's DEALER.
  for (const auto& link : links_) {
    while (true) {
      auto frame = link->dealer().Receive(std::chrono::milliseconds(0));
      if (!frame.ok() || !frame->has_value()) break;
      auto msg = wire::DecodePeerMessage((*frame)->to_string_view());
      if (!msg.ok() || msg->kind != wire::peer_kind::kAck || msg->from != link->name()) {
        spdlog::warn(
            "link to {}: dropped an unexpected message: {}", link->name(),
            msg.ok() ? "kind " + msg->kind + " from " + msg->from : msg.status().ToString());
        continue;
      }
      link->OnAck(msg->acked, msg->boot, now);
    }
  }
  // Data and pings arrive on the peer ROUTER.
  if (!peers_in_) return;
  size_t taken = 0;
  while (taken++ < options_.max_batch) {
    auto m = peers_in_->TryReceive();
    if (!m.ok() || !m->has_value()) break;
    net::RoutedMessage& routed = **m;
    if (routed.frames.size() != 1) {
      spdlog::warn("dropped a {}-frame message from peer connection '{}'", routed.frames.size(),
                   routed.routing_id.substr(0, 64));
      continue;
    }
    auto msg = wire::DecodePeerMessage(routed.frames[0].to_string_view());
    if (!msg.ok()) {
      spdlog::warn("dropped a malformed message from peer connection '{}': {}",
                   routed.routing_id.substr(0, 64), msg.status().ToString());
      continue;
    }
    bool known = false;
    for (const auto& link : links_) known = known || link->name() == msg->from;
    if (!known || routed.routing_id != msg->from) {
      spdlog::error(
          "dropped a message from '{}' (connection '{}'): not a configured peer; add "
          "it to [[peers]] on node {}",
          msg->from, routed.routing_id.substr(0, 64), options_.name);
      continue;
    }
    if (msg->kind == wire::peer_kind::kPing) {
      in->pinged.insert(msg->from);
    } else if (wire::IsDataKind(msg->kind)) {
      in->peer_data.push_back(std::move(msg).value());
    }
  }
}

Status Node::ApplyPeers(Txn& txn, Batch& batch, const Inbound& in,
                        std::map<std::string, uint64_t>* acks) {
  for (const wire::PeerMessage& msg : in.peer_data) {
    HANDOFF_ASSIGN_OR_RETURN((*acks)[msg.from], peer_service_->Apply(txn, batch, msg));
  }
  for (const std::string& peer : in.pinged) {
    if (acks->count(peer) == 0) {
      HANDOFF_ASSIGN_OR_RETURN((*acks)[peer], peer_service_->Applied(txn, peer));
    }
  }
  for (const auto& link : links_) {
    if (!link->NeedsTrim()) continue;
    HANDOFF_RETURN_IF_ERROR(store_->TrimOutbox(txn, link->name(), link->acked()).status());
    // Noted now, so the next turns do not trim the same entries again. Should this turn's
    // commit fail, the entries stay until the next trim, which starts at the link's first.
    link->Trimmed(link->acked());
  }
  return Status::OK();
}

void Node::AfterPeers(const Batch& batch, const std::map<std::string, uint64_t>& acks) {
  for (const auto& link : links_) {
    auto emitted = batch.emitted.find(link->name());
    if (emitted != batch.emitted.end()) link->Assigned(emitted->second);
  }
  for (const auto& [peer, acked] : acks) {
    Status s = peers_in_->Send(peer, wire::EncodePeerAck(options_.name, boot_, acked));
    if (!s.ok()) spdlog::debug("ack to {} not sent: {}", peer, s.ToString());
  }
  const int64_t now = options_.clock->NowMs();
  for (const auto& link : links_) link->Pump(*store_, [this] { return BeginView(); }, now);
}

void Node::WritePeerStatus(MsgWriter& w) const {
  const int64_t now = options_.clock->NowMs();
  auto txn = BeginView();
  w.Key("peers");
  w.BeginArray();
  for (const auto& link : links_) {
    w.BeginMap();
    w.Field("name", link->name());
    w.Field("endpoint", link->endpoint());
    w.Field("connected", link->connected(now));
    if (link->last_heard_ms() != 0) {
      w.Field("last_heard_at", link->last_heard_ms());
      w.Field("last_heard_ms_ago", now - link->last_heard_ms());
    }
    w.Field("outbox_depth", link->pending());
    if (txn.ok() && link->pending() > 0) {
      std::vector<storage::OutboxEntry> oldest;
      if (store_->ReadOutbox(*txn, link->name(), link->acked() + 1, 1, &oldest).ok() &&
          !oldest.empty()) {
        w.Field("oldest_pending_age_ms", now - oldest.front().queued_at_ms);
      }
    }
    w.Field("retransmissions", link->retransmissions());
    w.Field("sent", link->sent());
    w.Field("acked", link->acked());
    w.EndMap();
  }
  w.EndArray();
}

}  // namespace handoff::node
