#include "net/sockets.h"

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
    if (options.handover) socket.set(zmq::sockopt::router_handover, 1);
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
    socket.set(zmq::sockopt::routing_id, zmq::buffer(routing_id.data(), routing_id.size()));
    if (options.immediate) socket.set(zmq::sockopt::immediate, 1);
    socket.connect(endpoint);
    return std::unique_ptr<Dealer>(new Dealer(std::move(socket)));
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
    return ZmqStatus(e, "receiving from handoffd");
  }
}

}  // namespace handoff::net
