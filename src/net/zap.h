// ZapHandler: decides which CURVE clients a node's peer ROUTER admits (ZeroMQ's ZAP, RFC 27).
//
// libzmq asks the socket bound at inproc://zeromq.zap.01 in the server socket's context about
// every CURVE handshake on a socket whose ZAP domain is set. This handler answers in a thread
// of its own: a client whose public key is listed is admitted, and the name that owns the key
// becomes the connection's User-Id, which every message from it carries (RoutedMessage::
// user_id); any other key is refused, logged once per (address, key) with what to do, and
// counted. It must be started before the ROUTER binds: a CURVE server with no handler admits
// every key.
//
// Thread safety: Start and the destructor from the owning thread; the counters from any.

#ifndef HANDOFF_NET_ZAP_H_
#define HANDOFF_NET_ZAP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "handoff/status.h"

namespace handoff::net {

// The ZAP domain of the peer ROUTER; requests for any other domain are refused.
inline constexpr const char* kPeerZapDomain = "handoff-peers";

class ZapHandler {
 public:
  // `keys` maps each admitted public key (Z85) to the name it authenticates as. `node` names
  // this node in log lines. `context` must outlive the handler.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                   std::map<std::string, std::string> keys,
                                                   std::string node);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Handshakes refused because the key is not listed.
  uint64_t unknown_key_refusals() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }

 private:
  ZapHandler(zmq::socket_t socket, std::map<std::string, std::string> keys, std::string node);
  void Run();
  // Answers one request (its frames); returns the reply frames.
  std::vector<std::string> Answer(const std::vector<zmq::message_t>& request);
  void LogRefusal(const std::string& address, const std::string& key);

  zmq::socket_t socket_;
  std::map<std::string, std::string> keys_;  // binary key (32 bytes) -> name
  std::string node_;
  std::map<std::string, uint64_t> logged_;  // "address key" -> refusals; bounded
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> admitted_{0};
  std::thread thread_;
};

}  // namespace handoff::net

#endif  // HANDOFF_NET_ZAP_H_
