// ZeroMQ sockets as handoff uses them: a ROUTER that serves many connections and a DEALER that
// talks to one ROUTER. This is the only code that sees zmq errors; callers get Status.
//
// Neither wrapper ever blocks on send: a full queue or a vanished peer is reported, and the
// caller decides (handoff never relies on ZeroMQ queues for durability; they drop on
// reconnect). Receives either do not wait (Router) or wait at most the given time (Dealer).
//
// Thread safety: a socket belongs to one thread, as in ZeroMQ.

#ifndef HANDOFF_NET_SOCKETS_H_
#define HANDOFF_NET_SOCKETS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "handoff/status.h"

namespace handoff::net {

struct SocketOptions {
  // Frames larger than this make ZeroMQ drop the connection that sent them; the application
  // checks its own, smaller limits first. Default: 64 MiB.
  int64_t max_message_bytes = int64_t{64} << 20;
  // Messages queued per connection before sends report ResourceExhausted. Default: 100000.
  int send_hwm = 100'000;
  // Messages queued for the receiver. Default: 100000.
  int receive_hwm = 100'000;
  // Queue messages only to completed connections, so a send with no live peer fails at once
  // instead of waiting in a queue that a reconnect would drop. Default: false.
  bool immediate = false;
  // ZMTP heartbeats: probe the connection this often and drop it after three silent periods,
  // so a hung peer is noticed and reconnected. 0: off. Default: 0.
  int heartbeat_ms = 0;
  // Reconnect delay after a connection drops, doubling up to reconnect_max_ms. Default: 100 ms
  // and 1 s.
  int reconnect_ms = 100;
  int reconnect_max_ms = 1000;
  // ROUTER only: a new connection with a routing id already in use takes it over (a peer that
  // restarted before its old connection timed out). Default: false.
  bool handover = false;
};

// One message received by a ROUTER: the sender's routing id and the frames it sent.
struct RoutedMessage {
  std::string routing_id;
  std::vector<zmq::message_t> frames;
};

class Router {
 public:
  static Result<std::unique_ptr<Router>> Bind(zmq::context_t& context, const std::string& endpoint,
                                              const SocketOptions& options);
  // The next queued message, or nullopt when none is waiting.
  Result<std::optional<RoutedMessage>> TryReceive();
  // Queues one frame for `routing_id`. Unavailable if that connection is gone,
  // ResourceExhausted if its queue is full.
  Status Send(std::string_view routing_id, std::string_view frame);

  zmq::socket_t& socket() { return socket_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  Router(zmq::socket_t socket, std::string endpoint)
      : socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  zmq::socket_t socket_;
  std::string endpoint_;
};

class Dealer {
 public:
  // Connects (asynchronously: ZeroMQ keeps reconnecting in the background) with the given
  // routing id, which must be 1-255 bytes and not start with a zero byte.
  static Result<std::unique_ptr<Dealer>> Connect(zmq::context_t& context,
                                                 const std::string& endpoint,
                                                 const std::string& routing_id,
                                                 const SocketOptions& options);
  // Queues one frame. ResourceExhausted if the queue is full.
  Status Send(std::string_view frame);
  // Waits up to `timeout` for one frame; nullopt on timeout. Extra frames are discarded.
  Result<std::optional<zmq::message_t>> Receive(std::chrono::milliseconds timeout);

  zmq::socket_t& socket() { return socket_; }

 private:
  explicit Dealer(zmq::socket_t socket) : socket_(std::move(socket)) {}
  zmq::socket_t socket_;
};

// Maps a zmq::error_t to a Status, naming the operation.
Status ZmqStatus(const zmq::error_t& e, std::string_view what);

}  // namespace handoff::net

#endif  // HANDOFF_NET_SOCKETS_H_
