#include "net/sockets.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iterator>
#include <utility>

namespace handoff::net {

Status ZmqStatus(const zmq::error_t& e, std::string_view what) {
  std::string msg = std::string(what) + ": " + e.what();
  switch (e.num()) {
    case EHOSTUNREACH:
    case ENOTCONN:
    case ECONNREFUSED:
    case ETERM:
      return Status::Unavailable(msg);
    case EAGAIN:
      return Status::ResourceExhausted(msg);
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
      return Status::InvalidArgument(msg);
    case EADDRINUSE:
      return Status::Unavailable(msg + " (address in use: is another handoffd running?)");
    default:
      return Status::IOError(msg);
  }
}

namespace {

void ApplyCommon(zmq::socket_t& s, const SocketOptions& options) {
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
  s.set(zmq::sockopt::sndhwm, options.send_hwm);
  s.set(zmq::sockopt::rcvhwm, options.receive_hwm);
  s.set(zmq::sockopt::reconnect_ivl, options.reconnect_ms);
  s.set(zmq::sockopt::reconnect_ivl_max, options.reconnect_max_ms);
  if (options.heartbeat_ms > 0) {
    s.set(zmq::sockopt::heartbeat_ivl, options.heartbeat_ms);
    s.set(zmq::sockopt::heartbeat_timeout, 3 * options.heartbeat_ms);
    s.set(zmq::sockopt::heartbeat_ttl, 3 * options.heartbeat_ms);
  }
}

}  // namespace

Result<std::unique_ptr<Router>> Router::Bind(zmq::context_t& context, const std::string& endpoint,
                                             const SocketOptions& options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::router);
    ApplyCommon(socket, options);
    // Sending to an unknown or departed connection fails instead of vanishing silently.
    socket.set(zmq::sockopt::router_mandatory, 1);
    if (!options.curve_secret_key.empty()) {
      socket.set(zmq::sockopt::curve_server, 1);
      socket.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
    }
    if (!options.zap_domain.empty()) socket.set(zmq::sockopt::zap_domain, options.zap_domain);
    socket.bind(endpoint);
    return std::unique_ptr<Router>(new Router(std::move(socket), endpoint));
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "binding " + endpoint);
  }
}

Result<std::optional<RoutedMessage>> Router::TryReceive() {
  try {
    RoutedMessage message;
    zmq::message_t id;
    if (!socket_.recv(id, zmq::recv_flags::dontwait)) return std::optional<RoutedMessage>();
    message.routing_id.assign(static_cast<const char*>(id.data()), id.size());
    while (socket_.get(zmq::sockopt::rcvmore)) {
      zmq::message_t part;
      // The rest of a message arrives with its first frame, so this does not wait.
      if (!socket_.recv(part, zmq::recv_flags::none)) break;
      if (message.frames.empty()) {
        // The connection's properties ride on the frames it sent, not on the routing id the
        // ROUTER prepends.
        if (const char* user = zmq_msg_gets(part.handle(), "User-Id")) message.user_id = user;
      }
      message.frames.push_back(std::move(part));
    }
    return std::optional<RoutedMessage>(std::move(message));
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "receiving");
  }
}

Status Router::Send(std::string_view routing_id, std::string_view frame) {
  try {
    if (!socket_.send(zmq::buffer(routing_id.data(), routing_id.size()),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return Status::ResourceExhausted("the connection's send queue is full");
    }
    // With the routing frame accepted, the body cannot block.
    socket_.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait);
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "sending to an agent connection");
  }
}

Result<std::unique_ptr<Dealer>> Dealer::Connect(zmq::context_t& context,
                                                const std::string& endpoint,
                                                const std::string& routing_id,
                                                const SocketOptions& options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    ApplyCommon(socket, options);
    if (!routing_id.empty()) {
      socket.set(zmq::sockopt::routing_id, zmq::buffer(routing_id.data(), routing_id.size()));
    }
    if (options.immediate) socket.set(zmq::sockopt::immediate, 1);
    if (!options.curve_server_key.empty()) {
      socket.set(zmq::sockopt::curve_serverkey, options.curve_server_key);
      socket.set(zmq::sockopt::curve_publickey, options.curve_public_key);
      socket.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
    }
    socket.connect(endpoint);
    return std::unique_ptr<Dealer>(new Dealer(std::move(socket), endpoint));
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "connecting to " + endpoint);
  }
}

Status Dealer::Send(std::string_view frame) {
  try {
    if (!socket_.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait)) {
      return Status::ResourceExhausted("the send queue to handoffd is full");
    }
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "sending to handoffd");
  }
}

Status Dealer::Disconnect() {
  try {
    socket_.disconnect(endpoint_);
  } catch (const zmq::error_t& e) {
    if (e.num() != ENOENT) return ZmqStatus(e, "disconnecting from " + endpoint_);
    // ZeroMQ already dropped it (a failed handshake ends the connection for good).
  }
  return Status::OK();
}

Status Dealer::Reconnect(const std::string& server_key) {
  HANDOFF_RETURN_IF_ERROR(Disconnect());
  try {
    // Options are read when a connection is made, so the new one uses the new key.
    if (!server_key.empty()) socket_.set(zmq::sockopt::curve_serverkey, server_key);
    socket_.connect(endpoint_);
    return Status::OK();
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "reconnecting to " + endpoint_);
  }
}

Result<std::optional<zmq::message_t>> Dealer::Receive(std::chrono::milliseconds timeout) {
  try {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::optional<zmq::message_t>();
    zmq::message_t message;
    if (!socket_.recv(message, zmq::recv_flags::dontwait)) {
      return std::optional<zmq::message_t>();
    }
    while (socket_.get(zmq::sockopt::rcvmore)) {
      zmq::message_t extra;
      if (!socket_.recv(extra, zmq::recv_flags::none)) break;
    }
    return std::optional<zmq::message_t>(std::move(message));
  } catch (const zmq::error_t& e) {
    // A signal (SIGTERM to stop an agent) interrupts the wait: nothing was received, and the
    // caller looks at why it was woken.
    if (e.num() == EINTR) return std::optional<zmq::message_t>();
    return ZmqStatus(e, "receiving from handoffd");
  }
}

std::string ProtocolErrorText(int code) {
  switch (code) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "the other side uses another security mechanism (CURVE on one side, none on the "
             "other)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "a CURVE box did not open (the wrong server key, or a forged handshake)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
      return "the CURVE key exchange failed";
    default:
      if (code >= ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED) return "the ZAP exchange failed";
      return "a ZMTP protocol error (code " + std::to_string(code) + ")";
  }
}

Result<std::unique_ptr<SocketMonitor>> SocketMonitor::Attach(zmq::context_t& context,
                                                             zmq::socket_t& socket) {
  static std::atomic<uint64_t> next{0};
  const std::string endpoint = "inproc://handoff-monitor-" + std::to_string(++next);
  constexpr int kEvents = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                          ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                          ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                          ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  try {
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kEvents) != 0) {
      throw zmq::error_t();
    }
    zmq::socket_t pair(context, zmq::socket_type::pair);
    pair.set(zmq::sockopt::linger, 0);
    pair.connect(endpoint);
    return std::unique_ptr<SocketMonitor>(new SocketMonitor(socket, std::move(pair)));
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "monitoring a socket");
  }
}

SocketMonitor::~SocketMonitor() {
  zmq_socket_monitor(watched_.handle(), nullptr, 0);
  pair_.close();
}

std::vector<SocketEvent> SocketMonitor::Take(size_t max) {
  std::vector<SocketEvent> events;
  try {
    while (events.size() < max) {
      zmq::message_t head;
      if (!pair_.recv(head, zmq::recv_flags::dontwait)) break;
      zmq::message_t address;
      if (head.more()) (void)pair_.recv(address, zmq::recv_flags::dontwait);
      if (head.size() < 6) continue;
      uint16_t id = 0;
      int32_t value = 0;
      std::memcpy(&id, head.data(), sizeof(id));
      std::memcpy(&value, static_cast<const char*>(head.data()) + 2, sizeof(value));
      using Kind = SocketEvent::Kind;
      static constexpr std::pair<uint16_t, Kind> kKinds[] = {
          {ZMQ_EVENT_CONNECTED, Kind::kConnected},
          {ZMQ_EVENT_DISCONNECTED, Kind::kDisconnected},
          {ZMQ_EVENT_HANDSHAKE_SUCCEEDED, Kind::kHandshakeOk},
          {ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, Kind::kHandshakeAuth},
          {ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, Kind::kHandshakeProtocol},
          {ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, Kind::kHandshakeNoDetail},
      };
      const auto* kind = std::find_if(std::begin(kKinds), std::end(kKinds),
                                      [&](const auto& k) { return k.first == id; });
      if (kind == std::end(kKinds)) continue;
      SocketEvent e{kind->second, value, address.to_string()};
      events.push_back(std::move(e));
    }
  } catch (const zmq::error_t&) {
    // The context is going away: no more events.
  }
  return events;
}

}  // namespace handoff::net
