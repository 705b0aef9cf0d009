#include "support/raw_peer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "support/process.h"

namespace handoff::testing {
namespace {

std::string MonitorEndpoint() {
  static std::atomic<int> next{0};
  return "inproc://raw-peer-monitor-" + std::to_string(++next);
}

}  // namespace

RawPeer::RawPeer(zmq::context_t& context, const std::string& endpoint, const NodeKey* key,
                 const std::string& server_key, const std::string& routing_id)
    : context_(context),
      socket_(context, zmq::socket_type::dealer),
      monitor_(context, zmq::socket_type::pair) {
  socket_.set(zmq::sockopt::linger, 0);
  if (!routing_id.empty()) socket_.set(zmq::sockopt::routing_id, routing_id);
  if (key != nullptr) {
    socket_.set(zmq::sockopt::curve_serverkey, server_key);
    socket_.set(zmq::sockopt::curve_publickey, key->public_key);
    socket_.set(zmq::sockopt::curve_secretkey, key->secret_key);
  }
  const std::string monitor = MonitorEndpoint();
  zmq_socket_monitor(socket_.handle(), monitor.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(monitor);
  socket_.connect(endpoint);
}

void RawPeer::Send(const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                             ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                             : zmq::send_flags::dontwait);
  }
}

std::optional<uint64_t> RawPeer::NextAck(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) continue;
    auto msg = wire::DecodePeerMessage(frame.to_string_view());
    if (msg.ok() && msg->kind == wire::peer_kind::kAck) return msg->acked;
  }
  return std::nullopt;
}

bool RawPeer::WaitAcked(const std::string& from, uint64_t seq, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    Send(wire::EncodePeerPing(from, 1));
    auto acked = NextAck(std::chrono::milliseconds(200));
    if (acked && *acked >= seq) return true;
  }
  return false;
}

bool RawPeer::Handshook(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return false;
  zmq::message_t event;
  return monitor_.recv(event, zmq::recv_flags::dontwait).has_value();
}

RawPeerServer::RawPeerServer(zmq::context_t& context, const std::string& endpoint,
                             const NodeKey* key, bool batches, bool compact_messages)
    : socket_(context, zmq::socket_type::router),
      batches_(batches),
      compact_messages_(compact_messages) {
  socket_.set(zmq::sockopt::linger, 0);
  if (key != nullptr) {
    socket_.set(zmq::sockopt::curve_server, 1);
    socket_.set(zmq::sockopt::curve_secretkey, key->secret_key);
  }
  socket_.bind(endpoint);
}

void RawPeerServer::Ack(const std::string& self, uint64_t upto) {
  REQUIRE(route_.size() > 0);  // nothing came in yet: no connection to answer on
  const std::string ack = wire::EncodePeerAck(self, 1, std::min(upto, applied_),
                                              wire::PeerFeatures{batches_, compact_messages_});
  zmq::message_t route;
  route.copy(route_);
  socket_.send(route, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  socket_.send(zmq::buffer(ack), zmq::send_flags::dontwait);
}

std::optional<wire::PeerMessage> RawPeerServer::NextData(const std::string& self,
                                                         std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (received_.empty() && std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    zmq::message_t route, frame;
    if (!socket_.recv(route, zmq::recv_flags::dontwait)) continue;
    if (!route.more() || !socket_.recv(frame, zmq::recv_flags::none)) continue;
    ++frames_;
    // Without `batches` a batch is what an old node cannot read: it is dropped, unacknowledged.
    if (ArrayLength(frame.to_string_view())) {
      ++batch_frames_;
      if (!batches_) continue;
    }
    auto msgs = wire::DecodePeerMessages(frame.to_string_view());
    if (!msgs.ok()) continue;
    bool compact = false;
    for (const wire::PeerMessage& msg : *msgs) {
      compact = compact || (msg.body != nullptr && msg.body->type == msgpack::type::ARRAY);
    }
    if (compact) {
      ++compact_frames_;
      if (!compact_messages_) continue;  // a node before compact updates refuses the frame
    }
    for (wire::PeerMessage& msg : *msgs) {
      if (!wire::IsDataKind(msg.kind)) continue;
      if (msg.seq <= applied_) ++duplicates_;
      if (msg.seq != applied_ + 1) continue;
      ++applied_;
      received_.push_back(std::move(msg));
    }
    route_.copy(route);
    if (!hold_acks_) Ack(self, applied_);
  }
  if (received_.empty()) return std::nullopt;
  wire::PeerMessage next = std::move(received_.front());
  received_.pop_front();
  return next;
}

namespace {

Daemon& Started(Daemon& d) {
  d.Start();
  return d;
}

}  // namespace

PlayedNodeC::PlayedNodeC(bool batches, bool compact_messages)
    : cluster(dir,
              {{"node-b", {"agent://acme/remote/*"}, ""}, {"node-c", {"agent://acme/cee/*"}, ""}}),
      agents(Started(cluster["node-b"]), kRemote, 1),
      c(context, cluster.peer_endpoint("node-c"), &cluster.key("node-c"), batches,
        compact_messages),
      to_b(context, cluster.peer_endpoint("node-b"), &cluster.key("node-c"),
           cluster.key("node-b").public_key) {}

}  // namespace handoff::testing
