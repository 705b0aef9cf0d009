// RawPeer: a peer connection driven by hand, for tests of what a node accepts from the network:
// a DEALER to a node's peer endpoint, plaintext or with any CURVE key, sending whatever frames
// a test builds (wire::PeerMessageBuilder) and reading the acks that come back. RawPeerServer is
// the other half: a ROUTER bound where a node's [[peers]] entry points, to read what the node
// sends that peer.

#ifndef HANDOFF_TESTS_SUPPORT_RAW_PEER_H_
#define HANDOFF_TESTS_SUPPORT_RAW_PEER_H_

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "support/agent_pool.h"
#include "support/cluster.h"
#include "wire/peer_protocol.h"

namespace handoff::testing {

class RawPeer {
 public:
  // Connects to `endpoint`. With `key` (its public and secret key set), speaks CURVE and
  // expects the node to prove `server_key`; without, plaintext. `routing_id` may be empty.
  RawPeer(zmq::context_t& context, const std::string& endpoint, const NodeKey* key = nullptr,
          const std::string& server_key = "", const std::string& routing_id = "");

  void Send(const std::vector<std::string>& frames);
  void Send(const std::string& frame) { Send(std::vector<std::string>{frame}); }
  // The next ack from the node within `timeout`: its `acked`, or nullopt.
  std::optional<uint64_t> NextAck(std::chrono::milliseconds timeout);
  // Pings until an ack says at least `seq` is applied; false after `timeout`.
  bool WaitAcked(const std::string& from, uint64_t seq, std::chrono::milliseconds timeout);
  // True if the CURVE/ZMTP handshake completed within `timeout` (a socket monitor says so).
  bool Handshook(std::chrono::milliseconds timeout);

 private:
  zmq::context_t& context_;
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
};

class RawPeerServer {
 public:
  // Binds a ROUTER at `endpoint` (tcp), with CURVE as `key` when given. With `batches`, its
  // acks say it reads batches, as a node's do; without, it is a node from before batches.
  // Likewise `compact_messages`: without, it is a node from before compact updates, which
  // refuses a frame holding one (unacknowledged).
  RawPeerServer(zmq::context_t& context, const std::string& endpoint, const NodeKey* key = nullptr,
                bool batches = false, bool compact_messages = false);
  // The next data message the node sends within `timeout` (pings skipped), decoded; every
  // message is acknowledged so the node does not resend it.
  std::optional<wire::PeerMessage> NextData(const std::string& self,
                                            std::chrono::milliseconds timeout);
  // While held, messages are taken but not acknowledged (a peer that is slow to apply what it
  // reads, on a connection that stays up); Ack then acknowledges up to `upto` of them.
  void HoldAcks(bool hold) { hold_acks_ = hold; }
  void Ack(const std::string& self, uint64_t upto);
  // Frames received, and how many of them were batches.
  size_t frames() const { return frames_; }
  size_t batches() const { return batch_frames_; }
  // Frames holding a compact update (refused, unless it says it reads them).
  size_t compact_frames() const { return compact_frames_; }
  // Data messages received again after they were taken (resent copies).
  size_t duplicates() const { return duplicates_; }

 private:
  zmq::socket_t socket_;
  const bool batches_;
  const bool compact_messages_;
  size_t compact_frames_ = 0;
  uint64_t applied_ = 0;
  std::deque<wire::PeerMessage> received_;  // of a batch, not yet returned
  size_t frames_ = 0, batch_frames_ = 0, duplicates_ = 0;
  bool hold_acks_ = false;
  zmq::message_t route_;  // the node's connection, as the last frame came in
};

// node-b, a real daemon hosting agent://acme/remote/* (one AgentPool agent answering), and
// node-c played by the test: node-b's messages for node-c arrive at `c`, and `to_b` speaks to
// node-b as node-c, with node-c's key. `batches`, `compact_messages`: what `c` says it reads.
struct PlayedNodeC {
  static constexpr const char* kRemote = "agent://acme/remote/worker";  // hosted by node-b
  explicit PlayedNodeC(bool batches = false, bool compact_messages = false);
  Daemon& b() { return cluster["node-b"]; }

  TempDir dir;
  Cluster cluster;
  AgentPool agents;
  zmq::context_t context;
  RawPeerServer c;
  RawPeer to_b;
};

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_RAW_PEER_H_
