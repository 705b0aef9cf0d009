// handoffd: one per host. Keeps intents durable and delivers them to local agents.
//
// Reads like a script: defaults, config, validate, open, serve, shut down. Signal handlers only
// ask the node to stop; the loop finishes its turn and returns.

#include <malloc.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>

#include "base/logging.h"
#include "config/config.h"
#include "net/curve_keys.h"
#include "node/node.h"

namespace {

handoff::node::Node* g_node = nullptr;

extern "C" void OnStopSignal(int) {
  if (g_node != nullptr) g_node->Stop();
}

// Under systemd (Type=notify): READY once the sockets are bound and the store recovered, a
// WATCHDOG ping from the loop thread at half the unit's WatchdogSec (a loop that stops turning
// stops pinging, and systemd restarts the daemon), STOPPING once asked to stop. Outside
// systemd (no NOTIFY_SOCKET) these do nothing.
void NotifyServiceManager(handoff::node::Node& node) {
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    node.SetLoopHook([] { sd_notify(0, "WATCHDOG=1"); },
                     static_cast<int64_t>(watchdog_usec / 2000));
  }
  const std::string ready = "READY=1\nSTATUS=serving " + node.options().agent_endpoint;
  sd_notify(0, ready.c_str());
}

int Fail(const handoff::Status& status) {
  std::fprintf(stderr, "handoffd: %s\n", status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The loop allocates and frees a few MiB per turn (messages, records, LMDB's dirty pages).
  // glibc's defaults hand that memory back to the kernel after every turn and fault it in
  // again on the next; keeping 64 MiB of slack costs nothing on a daemon and about 15% of its
  // CPU otherwise (docs/performance.md).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  CLI::App app{"handoffd: durable agent-to-agent handoff, one daemon per host"};
  std::string config_path;
  std::string log_level;
  std::string log_format;
  bool check_config = false;
  bool show_public_key = false;
  std::string keygen_path;
  app.add_option("-c,--config", config_path, "TOML config file (see config/handoffd.toml)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  app.add_option("--log-format", log_format, "text or json (one object per line)");
  app.add_flag("--check-config", check_config, "validate the config, print it and exit");
  app.add_flag("--show-public-key", show_public_key,
               "print this node's CURVE public key (creating its key pair if there is none) and "
               "exit; reads only [node]");
  app.add_option("--keygen", keygen_path,
                 "write a new secret key file at FILE (mode 0600), print its public key and exit")
      ->type_name("FILE");
  app.set_version_flag("--version", std::string("handoffd ") + HANDOFF_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (!keygen_path.empty()) {
    auto pair = handoff::net::GenerateCurveKeyPair();
    if (!pair.ok()) return Fail(pair.status());
    if (handoff::Status s = handoff::net::WriteSecretKeyFile(keygen_path, *pair); !s.ok()) {
      return Fail(s);
    }
    std::printf("%s\n", pair->public_key.c_str());
    return 0;
  }

  handoff::config::DaemonConfig config;
  if (!config_path.empty()) {
    auto loaded =
        handoff::config::LoadFile(config_path, show_public_key ? handoff::config::Scope::kNodeOnly
                                                               : handoff::config::Scope::kAll);
    if (!loaded.ok()) return Fail(loaded.status());
    config = std::move(loaded).value();
  }
  if (show_public_key) {
    auto pair = handoff::net::LoadOrCreateSecretKeyFile(handoff::node::SecretKeyPath(config.node));
    if (!pair.ok()) return Fail(pair.status());
    std::printf("%s\n", pair->public_key.c_str());
    return 0;
  }
  if (!log_level.empty()) config.log_level = log_level;
  if (!log_format.empty()) config.log_format = log_format;
  if (handoff::Status s = handoff::InitLogging(config.log_level, config.log_format); !s.ok()) {
    return Fail(s);
  }

  if (check_config) {
    const auto& o = config.node;
    if (handoff::Status s = handoff::node::ValidateNodeOptions(o); !s.ok()) return Fail(s);
    std::printf("name = %s\ndata_dir = %s\nagent_endpoint = %s\nfsync = %s\n", o.name.c_str(),
                o.data_dir.c_str(), o.agent_endpoint.c_str(), o.fsync ? "true" : "false");
    std::printf("peer_endpoint = %s\npeer_security = %s\nmetrics_endpoint = %s\n",
                o.peer_endpoint.empty() ? "none" : o.peer_endpoint.c_str(),
                o.peer_security == handoff::node::PeerSecurity::kCurve ? "curve" : "none",
                o.metrics_endpoint.empty() ? "off" : o.metrics_endpoint.c_str());
    for (const auto& peer : o.peers) {
      std::printf("peer %s at %s, %zu key(s)\n", peer.name.c_str(), peer.endpoint.c_str(),
                  peer.public_keys.size());
    }
    for (const auto& route : o.routes) {
      std::printf("route %s -> %s\n", route.match.c_str(), route.node.c_str());
    }
    return 0;
  }

  auto node = handoff::node::Node::Open(config.node);
  if (!node.ok()) return Fail(node.status());

  g_node = node->get();
  struct sigaction stop {};
  stop.sa_handler = OnStopSignal;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  NotifyServiceManager(**node);
  handoff::Status s = (*node)->Run();
  sd_notify(0, "STOPPING=1");
  g_node = nullptr;
  node->reset();
  if (!s.ok()) return Fail(s);
  return 0;
}
