#include "support/free_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

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
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int ClaimTcpPort() {
  const int high = EphemeralLow();
  const int low = std::max(1024, high - 12000);
  if (high - low < 1000) return 0;  // ip_local_port_range leaves too few ports below it
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
  return 0;
}

}  // namespace handoff::testing
