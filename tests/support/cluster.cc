#include "support/cluster.h"

#include <doctest/doctest.h>

#include <sstream>

#include "net/curve_keys.h"
#include "support/free_port.h"

namespace handoff::testing {

int FreeTcpPort() {
  const int port = ClaimTcpPort();
  REQUIRE_MESSAGE(port != 0, "no free TCP port below the ephemeral range");
  return port;
}

NodeKey MakeNodeKey(const std::string& file) {
  auto pair = net::GenerateCurveKeyPair();
  REQUIRE(pair.ok());
  REQUIRE(net::WriteSecretKeyFile(file, *pair).ok());
  return NodeKey{pair->public_key, pair->secret_key, file};
}

Cluster::Cluster(const TempDir& dir, const std::vector<NodeSpec>& nodes,
                 const std::string& security) {
  std::map<std::string, std::string>& endpoint = endpoints_;
  const bool curve = security == "curve";
  for (const NodeSpec& n : nodes) {
    endpoint[n.name] = "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
    if (curve) keys_[n.name] = MakeNodeKey(dir.Sub(n.name + ".key"));
  }
  for (const NodeSpec& n : nodes) {
    std::ostringstream extra;
    extra << "peer_endpoint = \"" << endpoint[n.name] << "\"\n"
          << "peer_heartbeat = \"200ms\"\n"
          << "retransmit_initial = \"100ms\"\n"
          << "retransmit_max = \"1s\"\n"
          << "peer_security = \"" << security << "\"\n";
    if (curve) extra << "secret_key_file = \"" << keys_[n.name].file << "\"\n";
    extra << n.extra << "\n";
    for (const NodeSpec& other : nodes) {
      if (other.name == n.name) continue;
      extra << "[[peers]]\nname = \"" << other.name << "\"\nendpoint = \"" << endpoint[other.name]
            << "\"\n";
      if (curve) extra << "public_key = \"" << keys_[other.name].public_key << "\"\n";
    }
    for (const NodeSpec& other : nodes) {
      if (other.name == n.name) continue;
      for (const std::string& pattern : other.hosts) {
        extra << "[[routes]]\nmatch = \"" << pattern << "\"\nnode = \"" << other.name << "\"\n";
      }
    }
    daemons_[n.name] = std::make_unique<Daemon>(dir, n.name, extra.str());
  }
}

void Cluster::StartAll() {
  for (auto& [name, daemon] : daemons_) daemon->Start();
}

void Cluster::WaitConnected() {
  for (auto& [name, daemon] : daemons_) {
    auto client = daemon->Connect();
    bool all = WaitFor(
        [&] {
          auto status = client->NodeStatus();
          if (!status.ok()) return false;
          for (const Json& peer : (*status)["peers"]) {
            if (!peer.value("connected", false)) return false;
          }
          return true;
        },
        std::chrono::seconds(20));
    INFO("node " << name << " log:\n" << daemon->Log());
    REQUIRE(all);
  }
}

}  // namespace handoff::testing
