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
  // CURVE (docs/security.md). This socket's key pair, Z85; empty: plaintext. Default: empty.
  std::string curve_public_key;
  std::string curve_secret_key;
  // DEALER with CURVE: the public key the server must prove it holds. Required with CURVE.
  std::string curve_server_key;
  // ROUTER with CURVE: the ZAP domain, which makes libzmq ask the context's ZAP handler
  // (net/zap.h) about every client. Default: empty.
  std::string zap_domain;
};

// What ZeroMQ's socket monitor reports about a socket's connections, as far as handoff cares.
struct SocketEvent {
  enum class Kind {
    kConnected,          // TCP connected (the handshake follows)
    kDisconnected,       // an established connection dropped
    kHandshakeOk,        // the ZMTP (and CURVE) handshake completed
    kHandshakeAuth,      // the server refused our credentials (ZAP said no); value: its code
    kHandshakeProtocol,  // a protocol error: mechanism mismatch, a key that does not decrypt
    kHandshakeNoDetail,  // the connection closed during the handshake
  };
  Kind kind;
  int value = 0;  // the status code, ZMQ_PROTOCOL_ERROR_* or errno, by kind
  std::string address;
};

// Describes a ZMQ_PROTOCOL_ERROR_* code for people.
std::string ProtocolErrorText(int code);

// Reads a socket's monitor events without blocking. Destroy it before the socket it watches.
class SocketMonitor {
 public:
  static Result<std::unique_ptr<SocketMonitor>> Attach(zmq::context_t& context,
                                                       zmq::socket_t& socket);
  ~SocketMonitor();
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;
  // The events reported since the last call, oldest first (at most `max`).
  std::vector<SocketEvent> Take(size_t max = 64);

 private:
  SocketMonitor(zmq::socket_t& watched, zmq::socket_t pair)
      : watched_(watched), pair_(std::move(pair)) {}
  zmq::socket_t& watched_;
  zmq::socket_t pair_;
};

// One message received by a ROUTER: the sender's routing id and the frames it sent.
struct RoutedMessage {
  std::string routing_id;
  // The name the ZAP handler gave the connection (the owner of its CURVE key); empty on a
  // socket without authentication.
  std::string user_id;
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
  // routing id, which must be 1-255 bytes and not start with a zero byte, or be empty for
  // one the ROUTER picks.
  static Result<std::unique_ptr<Dealer>> Connect(zmq::context_t& context,
                                                 const std::string& endpoint,
                                                 const std::string& routing_id,
                                                 const SocketOptions& options);
  // Queues one frame. ResourceExhausted if the queue is full.
  Status Send(std::string_view frame);
  // Drops the connection (and stops ZeroMQ's reconnecting); what was queued is dropped.
  Status Disconnect();
  // Connects again, expecting the server to prove `server_key` when CURVE is on (a peer listed
  // with two keys while it rotates). Needed after a handshake the peer refused: ZeroMQ gives up
  // on a connection that failed its handshake with a protocol error.
  Status Reconnect(const std::string& server_key);
  // Waits up to `timeout` for one frame; nullopt on timeout. Extra frames are discarded.
  Result<std::optional<zmq::message_t>> Receive(std::chrono::milliseconds timeout);

  zmq::socket_t& socket() { return socket_; }

 private:
  Dealer(zmq::socket_t socket, std::string endpoint)
      : socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  zmq::socket_t socket_;
  std::string endpoint_;
};

// Maps a zmq::error_t to a Status, naming the operation.
Status ZmqStatus(const zmq::error_t& e, std::string_view what);

}  // namespace handoff::net

#endif  // HANDOFF_NET_SOCKETS_H_
