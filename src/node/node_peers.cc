// The peer half of Node: binding the peer endpoint, securing it, links to each peer, admitting
// and applying what peers send and acknowledging it, and reporting link health.

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "base/names.h"
#include "net/endpoint.h"
#include "node/node.h"
#include "wire/peer_protocol.h"

namespace handoff::node {
namespace {

constexpr int64_t kRefusalLogPeriodMs = 60'000;
constexpr size_t kMaxRefusalKeys = 1024;

// ZeroMQ's ROUTER names a connection that chose no routing id with 5 bytes, the first zero.
bool IsGeneratedRoutingId(std::string_view id) { return !id.empty() && id.front() == '\0'; }

}  // namespace

Status Node::OpenPeerSecurity() {
  if (options_.peer_security == PeerSecurity::kNone) {
    if (!options_.peers.empty() || !options_.peer_endpoint.empty()) {
      spdlog::warn(
          "peer_security = \"none\": peer links are neither encrypted nor authenticated. Anyone "
          "who can reach {} can pose as a peer: create intents for local agents, complete or "
          "cancel forwarded ones. Use it only on a network where every host is trusted; the "
          "default, \"curve\", needs one public_key per [[peers]] entry (docs/security.md)",
          options_.peer_endpoint.empty() ? "this node's peers" : options_.peer_endpoint);
    }
    return Status::OK();
  }
  const std::string path = SecretKeyPath(options_);
  auto keys = net::LoadOrCreateSecretKeyFile(path);
  if (!keys.ok()) {
    return Status(keys.status().code(),
                  "peer_security = \"curve\" needs this node's key: " + keys.status().message());
  }
  keys_ = std::move(keys).value();
  std::map<std::string, std::string> admitted;
  for (const PeerOptions& peer : options_.peers) {
    if (peer.public_keys.empty()) {
      return Status::InvalidArgument("[[peers]] '" + peer.name +
                                     "' has no public_key, which peer_security = \"curve\" "
                                     "needs (docs/security.md)");
    }
    for (const std::string& key : peer.public_keys) {
      if (key == keys_->public_key) {
        return Status::InvalidArgument("[[peers]] '" + peer.name +
                                       "' lists this node's own public key");
      }
      admitted.emplace(key, peer.name);
    }
  }
  HANDOFF_ASSIGN_OR_RETURN(zap_, net::ZapHandler::Start(context_, admitted, options_.name));
  spdlog::info("peer links use CURVE; this node's public key is {} (from {})", keys_->public_key,
               path);
  return Status::OK();
}

Status Node::OpenPeers() {
  HANDOFF_RETURN_IF_ERROR(OpenPeerSecurity());
  net::SocketOptions socket;
  // The largest peer message carries two blobs (an intent's payload and checkpoint, or an
  // update's checkpoint and result) and up to 64 events: room for three, and 1 MiB.
  socket.max_message_bytes = static_cast<int64_t>(3 * options_.max_payload_bytes + (1 << 20));
  // Per connection, in messages: a peer that sends faster than the loop applies is slowed.
  socket.receive_hwm = PeerLink::kSendHwm;
  socket.send_hwm = PeerLink::kSendHwm;
  socket.heartbeat_ms = static_cast<int>(options_.peer_heartbeat_ms);
  if (keys_) {
    socket.curve_public_key = keys_->public_key;
    socket.curve_secret_key = keys_->secret_key;
    socket.zap_domain = net::kPeerZapDomain;
  }
  if (!options_.peer_endpoint.empty()) {
    HANDOFF_RETURN_IF_ERROR(net::PrepareIpcBind(options_.peer_endpoint));
    HANDOFF_ASSIGN_OR_RETURN(peers_in_,
                             net::Router::Bind(context_, options_.peer_endpoint, socket));
    HANDOFF_RETURN_IF_ERROR(net::RestrictIpcSocket(options_.peer_endpoint));
    HANDOFF_ASSIGN_OR_RETURN(peers_in_monitor_,
                             net::SocketMonitor::Attach(context_, peers_in_->socket()));
  }
  randombytes_buf(&boot_, sizeof(boot_));
  for (const PeerOptions& peer : options_.peers) {
    auto link =
        std::make_unique<PeerLink>(options_.name, boot_, peer, options_, keys_ ? &*keys_ : nullptr);
    HANDOFF_RETURN_IF_ERROR(link->Open(context_, *store_));
    links_.push_back(std::move(link));
  }
  return Status::OK();
}

bool Node::ShouldLogRefusal(const std::string& key, int64_t now) {
  auto it = refusal_logged_.find(key);
  if (it != refusal_logged_.end()) {
    if (now - it->second < kRefusalLogPeriodMs) return false;
    it->second = now;
    return true;
  }
  if (refusal_logged_.size() >= kMaxRefusalKeys) refusal_logged_.clear();
  refusal_logged_.emplace(key, now);
  return true;
}

void Node::PollHandshakes(int64_t now) {
  for (const auto& link : links_) link->PollHandshakes(now);
  if (!peers_in_monitor_) return;
  for (const net::SocketEvent& e : peers_in_monitor_->Take()) {
    // Refusals by key are the ZAP handler's to count and log; these are connections that did
    // not get as far as showing a key. Which side notices a mechanism mismatch first is a
    // race, so a plaintext client shows here as a protocol error or as a connection closed
    // mid-handshake.
    std::string why;
    if (e.kind == net::SocketEvent::Kind::kHandshakeProtocol) {
      why = net::ProtocolErrorText(e.value);
    } else if (e.kind == net::SocketEvent::Kind::kHandshakeNoDetail) {
      why =
          "it closed during the handshake (a plaintext client, one expecting another key, or "
          "a port scan)";
    } else {
      continue;
    }
    ++handshake_failures_;
    if (!ShouldLogRefusal(
            "handshake " + std::to_string(static_cast<int>(e.kind)) + " " + std::to_string(e.value),
            now)) {
      continue;
    }
    if (keys_) {
      spdlog::error(
          "refused a connection to the peer endpoint {}: {}. A node must connect with "
          "peer_security = \"curve\" and this node's public key {} listed for '{}' in its "
          "[[peers]]",
          options_.peer_endpoint, why, keys_->public_key, options_.name);
    } else {
      spdlog::error("refused a connection to the peer endpoint {}: {}", options_.peer_endpoint,
                    why);
    }
  }
}

bool Node::Admit(const net::RoutedMessage& routed, const wire::PeerMessage& msg) {
  const int64_t now = options_.clock->NowMs();
  const bool chosen_id = !IsGeneratedRoutingId(routed.routing_id);
  if (keys_) {
    // The key decides who this is; the name it claims must be that.
    const std::string& who = routed.user_id;
    if (!who.empty() && msg.from == who && (!chosen_id || routed.routing_id == who)) return true;
    ++impostor_messages_[who];
    if (ShouldLogRefusal("impostor " + who + " " + msg.from, now)) {
      spdlog::error(
          "refused a {} message claiming to be from {} (routing id {}) on a connection "
          "authenticated as '{}': a peer may speak only for itself. If '{}' is compromised, "
          "remove its key from [[peers]] on node {}",
          msg.kind, Quoted(msg.from), chosen_id ? Quoted(routed.routing_id) : "(none)", who, who,
          options_.name);
    }
    return false;
  }
  bool known = false;
  for (const auto& link : links_) known = known || link->name() == msg.from;
  if (known && (!chosen_id || routed.routing_id == msg.from)) return true;
  ++impostor_messages_[known ? msg.from : ""];
  if (known && ShouldLogRefusal("mismatch " + msg.from + " " + routed.routing_id, now)) {
    // A configured peer's name on a connection that identifies itself as someone else.
    spdlog::error(
        "dropped a {} message claiming to be from peer {} on a connection whose routing id is "
        "{}: {} is a configured peer, but its links identify themselves by its name. Another "
        "process may be posing as it: peer_security = \"none\" authenticates nobody; set "
        "\"curve\" on every node",
        msg.kind, Quoted(msg.from), Quoted(routed.routing_id), msg.from);
  } else if (!known && ShouldLogRefusal("unknown " + msg.from, now)) {
    spdlog::error(
        "dropped a message from {} (routing id {}): not a configured peer; add it to "
        "[[peers]] on node {}",
        Quoted(msg.from), chosen_id ? Quoted(routed.routing_id) : "(none)", options_.name);
  }
  return false;
}

void Node::DrainPeers(Inbound* in) {
  const int64_t now = options_.clock->NowMs();
  PollHandshakes(now);
  // Acks come back on each link's DEALER.
  for (const auto& link : links_) {
    while (true) {
      auto frame = link->dealer().Receive(std::chrono::milliseconds(0));
      if (!frame.ok() || !frame->has_value()) break;
      auto msg = wire::DecodePeerMessage((*frame)->to_string_view());
      if (!msg.ok() || msg->kind != wire::peer_kind::kAck || msg->from != link->name()) {
        spdlog::warn("link to {}: dropped an unexpected message: {}", link->name(),
                     msg.ok() ? "kind " + Quoted(msg->kind) + " from " + Quoted(msg->from)
                              : msg.status().ToString());
        continue;
      }
      link->OnAck(msg->acked, msg->boot, msg->features, now);
    }
  }
  // Data and pings arrive on the peer ROUTER.
  if (!peers_in_) return;
  // Bounded in bytes as well as in messages: what a turn takes is decoded and held until the
  // turn is done (at least one message).
  constexpr uint64_t kMaxTurnPeerBytes = uint64_t{32} << 20;
  size_t taken = 0;
  uint64_t bytes = 0;
  while (taken < options_.max_batch && bytes < kMaxTurnPeerBytes) {
    auto m = peers_in_->TryReceive();
    if (!m.ok() || !m->has_value()) break;
    net::RoutedMessage& routed = **m;
    for (const zmq::message_t& f : routed.frames) bytes += f.size();
    const std::string who = Quoted(keys_ ? routed.user_id : routed.routing_id);
    if (routed.frames.size() != 1) {
      if (ShouldLogRefusal("frames " + who, now)) {
        spdlog::warn("dropped a {}-frame message from peer connection {}", routed.frames.size(),
                     who);
      }
      continue;
    }
    auto msgs = wire::DecodePeerMessages(routed.frames[0].to_string_view());
    if (!msgs.ok()) {
      ++taken;
      if (ShouldLogRefusal("malformed " + who, now)) {
        spdlog::warn("dropped a malformed message from peer connection {}: {}", who,
                     msgs.status().ToString());
      }
      continue;
    }
    taken += msgs->size();
    for (wire::PeerMessage& msg : *msgs) {
      if (!Admit(routed, msg)) continue;
      peer_routes_[msg.from] = routed.routing_id;
      if (msg.kind == wire::peer_kind::kPing) {
        in->pinged.insert(msg.from);
      } else if (wire::IsDataKind(msg.kind)) {
        in->peer_data.push_back(std::move(msg));
      }
    }
  }
}

Status Node::ApplyPeers(Txn& txn, Batch& batch, const Inbound& in,
                        std::map<std::string, uint64_t>* acks) {
  HANDOFF_RETURN_IF_ERROR(peer_service_->ApplyAll(txn, batch, in.peer_data, acks));
  for (const std::string& peer : in.pinged) {
    if (acks->count(peer) == 0) {
      HANDOFF_ASSIGN_OR_RETURN((*acks)[peer], peer_service_->Applied(txn, peer));
    }
  }
  for (const auto& link : links_) {
    if (!link->NeedsTrim()) continue;
    HANDOFF_RETURN_IF_ERROR(
        store_->TrimOutbox(txn, link->name(), link->trimmed(), link->acked()).status());
    // Noted now, so the next turns do not trim the same entries again. Should this turn's
    // commit fail, the entries stay until the next trim, which then starts at the link's
    // first (OnCommitted: TrimFailed).
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
    auto route = peer_routes_.find(peer);
    if (route == peer_routes_.end()) continue;
    Status s = peers_in_->Send(route->second, wire::EncodePeerAck(options_.name, boot_, acked));
    if (!s.ok()) spdlog::debug("ack to {} not sent: {}", peer, s.ToString());
  }
  const int64_t now = options_.clock->NowMs();
  for (const auto& link : links_)
    link->Pump(
        *store_, [this] { return BeginView(); }, now);
}

std::optional<int64_t> Node::OldestPendingAgeMs(const Result<Txn>& view, const PeerLink& link,
                                                int64_t now) const {
  if (!view.ok() || link.pending() == 0) return std::nullopt;
  auto oldest = store_->FirstOutbox(*view, link.name(), link.acked() + 1);
  if (!oldest.ok() || !*oldest) return std::nullopt;
  return now - (*oldest)->queued_at_ms;
}

void Node::WritePeerStatus(MsgWriter& w) const {
  const int64_t now = options_.clock->NowMs();
  auto txn = BeginView();
  w.Field("peer_security", keys_ ? "curve" : "none");
  if (keys_) w.Field("public_key", keys_->public_key);
  const uint64_t unknown_keys = zap_ ? zap_->unknown_key_refusals() : 0;
  uint64_t impostors = 0;
  for (const auto& [who, n] : impostor_messages_) impostors += n;
  // Everything refused on this node's peer port: keys it does not know, handshakes that did not
  // get as far as a key (plaintext, a wrong server key), messages under another peer's name.
  w.Field("auth_failures", unknown_keys + handshake_failures_ + impostors);
  w.Field("auth_failures_unknown_key", unknown_keys);
  w.Field("auth_failures_handshake", handshake_failures_);
  w.Field("auth_failures_impersonation", impostors);
  w.Key("peers");
  w.BeginArray();
  for (const auto& link : links_) {
    w.BeginMap();
    w.Field("name", link->name());
    w.Field("endpoint", link->endpoint());
    const bool connected = link->connected(now);
    w.Field("connected", connected);
    w.Field("state", link->auth_failed() ? "auth_failed" : connected ? "connected" : "down");
    if (link->auth_failed()) w.Field("auth_error", link->auth_error());
    auto impostor = impostor_messages_.find(link->name());
    w.Field("auth_failures",
            link->auth_failures() + (impostor == impostor_messages_.end() ? 0 : impostor->second));
    if (keys_) w.Field("public_key", link->server_key());
    w.Field("refused", peer_service_->refused(link->name()));
    if (link->last_heard_ms() != 0) {
      w.Field("last_heard_at", link->last_heard_ms());
      w.Field("last_heard_ms_ago", now - link->last_heard_ms());
    }
    w.Field("outbox_depth", link->pending());
    if (auto age = OldestPendingAgeMs(txn, *link, now)) w.Field("oldest_pending_age_ms", *age);
    w.Field("retransmissions", link->retransmissions());
    w.Field("sent", link->sent());
    w.Field("frames", link->frames_sent());
    w.Field("batches", link->peer_features().batches);
    w.Field("compact_messages", link->peer_features().compact_messages);
    w.Field("rewritten", link->rewritten());
    w.Field("in_flight_bytes", link->in_flight_bytes());
    w.Field("acked", link->acked());
    w.EndMap();
  }
  w.EndArray();
}

}  // namespace handoff::node
