#include "bench/bench_daemons.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "handoff/client.h"
#include "net/curve_keys.h"

extern char** environ;

namespace handoff::bench {

std::optional<std::map<std::string, PeerKey>> PeerKeys(const Options& o, const std::string& dir,
                                                       const std::vector<std::string>& nodes) {
  std::map<std::string, PeerKey> keys;
  for (const std::string& node : nodes) {
    PeerKey& k = keys[node];
    k.own = "peer_security = \"" + o.peer_security + "\"\n";
    if (o.peer_security != "curve") continue;
    const std::string file = dir + "/" + node + ".key";
    auto pair = net::GenerateCurveKeyPair();
    Status written = pair.ok() ? net::WriteSecretKeyFile(file, *pair) : pair.status();
    if (!written.ok()) {
      std::fprintf(stderr, "handoff-bench: %s\n", written.ToString().c_str());
      return std::nullopt;
    }
    k.own += "secret_key_file = \"" + file + "\"\n";
    k.listed = "public_key = \"" + pair->public_key + "\"\n";
  }
  return keys;
}

std::string DaemonGlibcTunables() {
  const char* own = std::getenv("GLIBC_TUNABLES");
  return own != nullptr ? own : kUnitGlibcTunables;
}

// Starts one handoffd with its config in `dir`.
void StartDaemon(const Options& o, const std::string& dir, Daemon& d, const std::string& extra) {
  const std::string config = dir + "/" + d.name + ".toml";
  std::ofstream(config) << "[node]\nname = \"" << d.name << "\"\ndata_dir = \"" << dir << "/"
                        << d.name << "\"\nagent_endpoint = \"" << d.endpoint
                        << "\"\nlog_level = \"warn\"\nfsync = " << (o.fsync ? "true" : "false")
                        << "\nmax_payload_bytes = " << std::max(1 << 20, 2 * o.payload) << "\n"
                        << o.extra_node_config << extra;
  // The environment is built before the fork: the child of a threaded process may only call
  // async-signal-safe functions before it execs.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "GLIBC_TUNABLES=", 15) != 0) env.emplace_back(*e);
  }
  env.push_back("GLIBC_TUNABLES=" + DaemonGlibcTunables());
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log = dir + "/" + d.name + ".log";
  const char* argv[] = {o.handoffd.c_str(), "--config", config.c_str(), nullptr};
  const pid_t bench = ::getpid();
  d.pid = ::fork();
  if (d.pid == 0) {
    // A benchmark that dies, however (Ctrl-C, SIGKILL), takes its daemons with it: SIGTERM,
    // which stops them cleanly. Checked after setting it, in case the benchmark died first.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != bench) ::_exit(127);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) ::dup2(fd, STDERR_FILENO);
    ::execve(argv[0], const_cast<char* const*>(argv), envp.data());
    ::_exit(127);
  }
}

// Waits until the daemon answers `status` and sees all its peers connected.
bool WaitReady(const Daemon& d) {
  handoff::ClientOptions client;
  client.endpoint = d.endpoint;
  client.request_timeout = std::chrono::seconds(2);
  for (int i = 0; i < 300; ++i) {
    auto c = handoff::Client::Connect(client);
    if (c.ok()) {
      auto s = (*c)->NodeStatus();
      if (s.ok()) {
        bool peers_up = true;
        if (s->contains("peers")) {
          for (const auto& p : (*s)["peers"]) peers_up = peers_up && p.value("connected", false);
        }
        if (peers_up) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

namespace {

// The daemon's `status` answer, or nothing if it does not answer within 5 s.
std::optional<handoff::Json> Status(const Daemon& d) {
  handoff::ClientOptions client;
  client.endpoint = d.endpoint;
  client.request_timeout = std::chrono::seconds(5);
  auto c = handoff::Client::Connect(client);
  if (!c.ok()) return std::nullopt;
  auto s = (*c)->NodeStatus();
  if (!s.ok()) return std::nullopt;
  return std::move(s).value();
}

}  // namespace

int64_t Commits(const Daemon& d) {
  auto s = Status(d);
  return s ? s->value("commits", int64_t{-1}) : -1;
}

int64_t LogBytes(const Daemon& d) {
  auto s = Status(d);
  return s ? s->value("log_bytes", int64_t{-1}) : -1;
}

Footprint Measure(const Daemon& d, const std::string& dir) {
  Footprint f;
  std::ifstream status("/proc/" + std::to_string(d.pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) f.rss_kb = std::atoll(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) f.peak_rss_kb = std::atoll(line.c_str() + 6);
  }
  struct stat st {};
  const std::string file = dir + "/" + d.name + "/data.mdb";
  if (::stat(file.c_str(), &st) == 0) {
    f.file_bytes = st.st_size;
    f.file_disk_bytes = static_cast<int64_t>(st.st_blocks) * 512;
  }
  if (auto s = Status(d)) {
    f.purged = s->value("purged", int64_t{-1});
    f.live_data_bytes = s->value("data_in_use_bytes", int64_t{-1});
    f.commit_us_avg = s->value("commit_us_avg", int64_t{-1});
  }
  return f;
}

void StopDaemon(Daemon& d) {
  if (d.pid <= 0) return;
  ::kill(d.pid, SIGTERM);
  int status = 0;
  ::waitpid(d.pid, &status, 0);
  d.pid = -1;
}

int64_t Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace handoff::bench
