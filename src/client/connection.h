// Connection: one connection to the local handoffd, with request/reply matching: over the
// daemon's stream socket when it has one (net/stream.h; ClientOptions::stream), else over a
// ZeroMQ DEALER socket. Both carry the same messages.
//
// Call() sends a request and waits for the reply with the same rid, resending the request
// after `resend_interval` of silence (a daemon that restarted lost it) until `timeout`. Pushes
// (deliveries) that arrive meanwhile are queued for NextPush(). Replies to earlier, abandoned
// requests are dropped.
//
// The first call asks the daemon (hello) whether it speaks agent protocol version 2; if it
// does, the connection says so in every request, and the daemon may batch what it sends it
// (deliveries above all), which the connection takes apart. A daemon that speaks only version
// 1 gets version 1.
//
// Thread safety: one thread at a time.

#ifndef HANDOFF_CLIENT_CONNECTION_H_
#define HANDOFF_CLIENT_CONNECTION_H_

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "base/msgpack_io.h"
#include "handoff/client.h"
#include "net/sockets.h"
#include "net/stream.h"
#include "wire/agent_protocol.h"

namespace handoff {

// A reply or push, decoded (its strings are in its own zone).
struct ReceivedReply {
  wire::Reply reply;
};

class Connection {
 public:
  // Unavailable at once if nothing listens on an ipc endpoint.
  static Result<std::unique_ptr<Connection>> Open(const ClientOptions& options);

  enum class Resend { kYes, kNo };
  // Sends op with the fields `fill` writes. Returns the reply, or its error as the Status.
  // `timeout` 0 means options().request_timeout.
  Result<ReceivedReply> Call(std::string_view op, const std::function<void(MsgWriter&)>& fill,
                             Resend resend = Resend::kYes,
                             std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // The next pushed message, waiting at most `timeout`; nullopt on timeout.
  Result<std::optional<ReceivedReply>> NextPush(std::chrono::milliseconds timeout);
  // A rid for a reply that comes without a request of its own (a send's wait_rid).
  uint64_t ReserveRid() { return next_rid_++; }
  // The reply with `rid`, waiting at most `timeout`; nullopt on timeout, an error reply as its
  // Status. Pushes that arrive meanwhile are kept for NextPush; replies to other rids (late
  // ones to abandoned requests) are dropped.
  Result<std::optional<ReceivedReply>> AwaitReply(uint64_t rid, std::chrono::milliseconds timeout);

  const ClientOptions& options() const { return options_; }
  // The agent protocol version this connection speaks: 0 until its first call, then 2 or 1.
  uint64_t protocol() const { return version_; }
  // "stream" or "zeromq".
  std::string_view transport() const { return stream_ ? "stream" : "zeromq"; }

 private:
  Connection(ClientOptions options, std::unique_ptr<net::StreamClient> stream)
      : options_(std::move(options)), stream_(std::move(stream)) {}
  Connection(ClientOptions options, std::unique_ptr<zmq::context_t> context,
             std::unique_ptr<net::Dealer> dealer)
      : options_(std::move(options)), context_(std::move(context)), dealer_(std::move(dealer)) {}
  Status SendFrame(std::string_view frame);
  // One frame's replies, decoded into inbox_; false on timeout.
  Result<bool> ReceiveFrame(std::chrono::milliseconds timeout);
  // The next message: the rest of a batch already received, else one frame received (waiting
  // at most `timeout`) and decoded.
  Result<std::optional<ReceivedReply>> ReceiveOne(std::chrono::milliseconds timeout);
  // Asks the daemon which version it speaks (hello with version 2), once.
  Status Negotiate(std::chrono::milliseconds timeout);
  Result<ReceivedReply> Exchange(std::string_view op, const std::function<void(MsgWriter&)>& fill,
                                 uint64_t version, Resend resend,
                                 std::chrono::milliseconds timeout);

  ClientOptions options_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<net::StreamClient> stream_;  // one of stream_ and dealer_
  std::unique_ptr<net::Dealer> dealer_;        // declared after the context: destroyed first
  std::deque<ReceivedReply> pushes_;
  std::deque<wire::Reply> inbox_;  // the rest of the latest batch
  uint64_t next_rid_ = 1;
  uint64_t version_ = 0;
};

}  // namespace handoff

#endif  // HANDOFF_CLIENT_CONNECTION_H_
