// NodeOptions: every knob of one handoffd, with its default.
//
// Filled from the TOML config in one place (src/config/config.cc); docs/configuration.md and
// config/handoffd.toml describe the same keys for operators.

#ifndef HANDOFF_NODE_OPTIONS_H_
#define HANDOFF_NODE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/defaults.h"

namespace handoff::node {

// [[peers]]: another node this one links to.
struct PeerOptions {
  std::string name;      // its [node] name
  std::string endpoint;  // its peer_endpoint, e.g. tcp://10.0.0.2:7400
  // Its CURVE public keys (Z85): the keys it may connect with, and the keys it may prove when
  // this node connects to it. Two while it rotates its key (docs/security.md). Required when
  // peer_security is curve.
  std::vector<std::string> public_keys;
};

// [node] peer_security: how peer links are protected.
enum class PeerSecurity {
  kCurve,  // encrypted, and both ends prove their keys (ZeroMQ CURVE, keys admitted by ZAP)
  kNone,   // plaintext and unauthenticated: for a network where every host is trusted
};

// [[routes]]: agent addresses (a pattern; '*' matches any run of characters) hosted by a node.
struct RouteOptions {
  std::string match;  // e.g. agent://acme/prod/*
  std::string node;   // a peer's name, or this node's own name for "local"
};

// The default of [node] update_delay (NodeOptions::update_delay_ms).
inline constexpr int64_t kDefaultUpdateDelayMs = 50;

struct NodeOptions {
  // [node] name: this node's name, recorded in every event and kept in the data directory.
  // Default: the host name (base/defaults.h).
  std::string name = DefaultNodeName();
  // [node] data_dir: where the LMDB files live. Default: $XDG_STATE_HOME/handoff or
  // ~/.local/state/handoff.
  std::string data_dir = DefaultDataDir();
  // [node] agent_endpoint: where local agents connect. Default: $HANDOFF_SOCKET, else
  // ipc:///tmp/handoff-<uid>/handoffd.sock.
  std::string agent_endpoint = DefaultAgentEndpoint();
  // [node] agent_socket_group: a group whose members may use the agent socket: its directory
  // gets mode 0770 and the socket 0660, both of that group. Empty: this user only (0700 and
  // 0600). Only for an ipc:// agent_endpoint. Default: empty.
  std::string agent_socket_group;
  // [node] agent_stream: also serve agents on a Unix stream socket beside an ipc://
  // agent_endpoint, at its path with ".stream" appended (net/stream.h; same permissions). The
  // C++ and Python clients use it when it is there: a round trip crosses half as many threads
  // as over ZeroMQ. Default: true.
  bool agent_stream = true;

  // [node] peer_endpoint: where peer nodes connect, e.g. tcp://0.0.0.0:7400. Default: empty,
  // which accepts no peer links (this node may still link out to its peers).
  std::string peer_endpoint;
  // [node] peer_security: "curve" or "none". Default: curve.
  PeerSecurity peer_security = PeerSecurity::kCurve;
  // [node] secret_key_file: this node's CURVE secret key (net/curve_keys.h). Default: empty,
  // which means <data_dir>/node.key, created on first need.
  std::string secret_key_file;
  // [[peers]] and [[routes]]. Addresses that match no route are local. Default: none.
  std::vector<PeerOptions> peers;
  std::vector<RouteOptions> routes;
  // [node] peer_heartbeat: how often a link is probed; a peer silent for three of these counts
  // as disconnected. Default: 1 s.
  int64_t peer_heartbeat_ms = 1000;
  // [node] retransmit_initial / retransmit_max: an unacknowledged peer message is sent again
  // after retransmit_initial, doubling up to retransmit_max. Default: 200 ms and 5 s.
  int64_t retransmit_initial_ms = 200;
  int64_t retransmit_max_ms = 5000;

  // [node] fsync: sync every commit to disk before replying. Default: true.
  bool fsync = true;
  // [node] map_size: the largest the data file may grow. Default: 1 GiB.
  uint64_t map_size = uint64_t{1} << 30;

  // [node] max_payload_bytes: largest payload, checkpoint or result (msgpack-encoded).
  // Default: 1 MiB.
  uint64_t max_payload_bytes = uint64_t{1} << 20;
  // [node] max_client_backlog: bytes of replies and deliveries an agent connection may leave
  // unread beyond what ZeroMQ queues for it (kAgentSendHwm messages); past it, its requests
  // wait until it reads. Default: 16 MiB.
  uint64_t max_client_backlog = uint64_t{16} << 20;
  // [node] max_total_client_backlog: the same for all connections together. Default: 256 MiB.
  uint64_t max_total_client_backlog = uint64_t{256} << 20;
  // [node] metrics_endpoint: "host:port" where GET /metrics serves Prometheus metrics
  // (docs/operations.md). Empty: off. Default: off.
  std::string metrics_endpoint;
  // [node] max_batch: requests a turn takes, and how many gathered make the loop start a commit
  // without waiting for quiet sockets (group commit). Default: 128: a busy node then flushes
  // one commit while its loop works on the next (docs/performance.md, "Batches").
  uint32_t max_batch = 128;
  // [node] busy_poll_us: how long the loop (while a commit runs) and the Committer (once it
  // has nothing to do) keep looking for each other's work, yielding the core between looks,
  // before they sleep. A sleeping thread woken again costs more than a flush on a virtual
  // machine. 0: sleep at once. At most kMaxBusyPollUs (limits.h). Default: 300
  // (docs/performance.md, "Busy polling").
  uint32_t busy_poll_us = 300;

  // [node] default_lease: lease of an intent whose sender set none. Default: 30 s.
  int64_t default_lease_ms = 30'000;
  // [node] receiver_timeout: a receiving connection not heard from for this long is dropped
  // (ReceiverSet::DropSilent). Default: 30 s.
  int64_t receiver_timeout_ms = 30'000;
  // [node] max_attempts: deliveries an intent gets (lease expiries included) unless its sender
  // says otherwise; 0: unlimited. Default: 5.
  uint32_t max_attempts = 5;
  // [node] retry_initial / retry_multiplier / retry_max: after a retryable failure an intent
  // waits retry_initial, times retry_multiplier per further failure, at most retry_max.
  // Defaults: 1 s, 2.0, 60 s.
  int64_t retry_initial_ms = 1000;
  double retry_multiplier = 2.0;
  int64_t retry_max_ms = 60'000;
  // [node] idempotency_ttl: how long a send's idempotency key is remembered. Default: 24 h.
  int64_t idempotency_ttl_ms = 24LL * 3600 * 1000;
  // [node] retention: how long ended intents and their events are kept; 0: forever. Dead
  // letters (FAILED here) are kept until replayed or purged. Default: 7 days.
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;
  // [node] update_delay: how long the destination of a forwarded intent holds the news of a
  // delivery or a start for the origin, so that it goes with the next change of that intent
  // in one update (an agent that acks, or finishes, within it); 0: every change at once.
  // Default: 50 ms.
  int64_t update_delay_ms = kDefaultUpdateDelayMs;

  // Source of time; must outlive the node. Default: the system clock.
  const Clock* clock = &SystemClock::Instance();
};

// The file in the data directory that holds the node's secret key when secret_key_file is unset.
inline constexpr const char* kSecretKeyFileName = "node.key";

// Where this node's secret key lives: secret_key_file, else <data_dir>/node.key.
inline std::string SecretKeyPath(const NodeOptions& o) {
  return o.secret_key_file.empty() ? o.data_dir + "/" + kSecretKeyFileName : o.secret_key_file;
}

}  // namespace handoff::node

#endif  // HANDOFF_NODE_OPTIONS_H_
