#include "support/cluster.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "net/curve_keys.h"

namespace handoff::testing {

namespace {

// The lowest port of the kernel's ephemeral range, from which it picks the source ports of
// outgoing connections (net.ipv4.ip_local_port_range); 32768, Linux's default, if unreadable.
int EphemeralLow() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (range >> low && low > 0) return low;
  return 32768;
}

bool CanBind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

// A port the kernel hands out (bind to port 0) is in the ephemeral range, and between the pick
// and the daemon's bind an outgoing connection of any test running alongside may take it as its
// source port (CI saw "Address already in use"). So ports come from below that range, and each
// is claimed for the rest of this process by a lock on a file named after it, which keeps two
// test processes running in parallel from picking the same one. The lock goes with the process.
int FreeTcpPort() {
  const int high = EphemeralLow();
  const int low = std::max(1024, high - 12000);
  REQUIRE_MESSAGE(high - low >= 1000, "ip_local_port_range leaves too few ports below it");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "handoff-test-ports";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::random_device seed;
  const int span = high - low;
  const int start = static_cast<int>(seed() % static_cast<unsigned>(span));
  for (int i = 0; i < span; ++i) {
    const int port = low + (start + i) % span;
    const std::string lock = (dir / std::to_string(port)).string();
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || !CanBind(port)) {
      ::close(fd);
      continue;
    }
    return port;  // `fd` stays open: the claim lasts until this process exits
  }
  FAIL("no free TCP port in [" << low << ", " << high << ")");
  return 0;
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
