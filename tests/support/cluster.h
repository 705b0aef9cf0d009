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

// ClaimTcpPort (support/free_port.h), or the test fails.
int FreeTcpPort();

struct NodeSpec {
  std::string name;
  // Route patterns this node hosts: every other node routes them here.
  std::vector<std::string> hosts;
  // Extra [node] keys, e.g. "fsync = false".
  std::string extra;
};

// A CURVE key pair written to a secret key file, as `handoffd --keygen` writes one.
struct NodeKey {
  std::string public_key;
  std::string secret_key;
  std::string file;
};
NodeKey MakeNodeKey(const std::string& file);

class Cluster {
 public:
  // Every node peers with every other over CURVE, each with a key of its own (in
  // <name>.key, [node] secret_key_file); heartbeat and retransmission timers are short. With
  // `security` "none" the links are plaintext and no keys are made.
  Cluster(const TempDir& dir, const std::vector<NodeSpec>& nodes,
          const std::string& security = "curve");
  Daemon& operator[](const std::string& name) { return *daemons_.at(name); }
  const NodeKey& key(const std::string& name) const { return keys_.at(name); }
  // Where a node's peer ROUTER listens.
  const std::string& peer_endpoint(const std::string& name) const { return endpoints_.at(name); }
  void StartAll();
  // Waits (bounded) until every node reports every peer connected.
  void WaitConnected();

 private:
  std::map<std::string, std::unique_ptr<Daemon>> daemons_;
  std::map<std::string, NodeKey> keys_;
  std::map<std::string, std::string> endpoints_;
};

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_CLUSTER_H_
