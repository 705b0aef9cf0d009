// NodeOptions: every knob of one handoffd, with its default.
//
// Filled from the TOML config in one place (src/config/config.cc); docs/configuration.md and
// config/handoffd.toml describe the same keys for operators.

#ifndef HANDOFF_NODE_OPTIONS_H_
#define HANDOFF_NODE_OPTIONS_H_

#include <cstdint>
#include <string>

#include "base/clock.h"
#include "base/defaults.h"

namespace handoff::node {

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

  // [node] fsync: sync every commit to disk before replying. Default: true.
  bool fsync = true;
  // [node] map_size: the largest the data file may grow. Default: 1 GiB.
  uint64_t map_size = uint64_t{1} << 30;

  // [node] max_payload_bytes: largest payload, checkpoint or result (msgpack-encoded).
  // Default: 1 MiB.
  uint64_t max_payload_bytes = uint64_t{1} << 20;
  // [node] max_batch: requests applied per commit (group commit). Default: 1024.
  uint32_t max_batch = 1024;

  // [node] default_lease: lease of an intent whose sender set none. Default: 30 s.
  int64_t default_lease_ms = 30'000;

  // Source of time; must outlive the node. Default: the system clock.
  const Clock* clock = &SystemClock::Instance();
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_OPTIONS_H_
