// Cluster: several real handoffd processes that are peers of each other on loopback TCP, each
// with its own data directory and agent socket inside one TempDir.

#ifndef HANDOFF_TESTS_SUPPORT_CLUSTER_H_
#define HANDOFF_TESTS_SUPPORT_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/daemon.h"

namespace handoff::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeTcpPort();

struct NodeSpec {
  std::string name;
  // Route patterns this node hosts: every other node routes them here.
  std::vector<std::string> hosts;
  // Extra [node] keys, e.g. "fsync = false".
  std::string extra;
};

class Cluster {
 public:
  // Every node peers with every other; heartbeat and retransmission timers are short.
  Cluster(const TempDir& dir, const std::vector<NodeSpec>& nodes);
  Daemon& operator[](const std::string& name) { return *daemons_.at(name); }
  void StartAll();
  // Waits (bounded) until every node reports every peer connected.
  void WaitConnected();

 private:
  std::map<std::string, std::unique_ptr<Daemon>> daemons_;
};

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_CLUSTER_H_
