// handoff-bench's daemons: starting handoffd processes on a temporary directory, waiting until
// they serve, asking them for their figures and stopping them.
#ifndef HANDOFF_TESTS_BENCH_BENCH_DAEMONS_H_
#define HANDOFF_TESTS_BENCH_BENCH_DAEMONS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace handoff::bench {

struct Options {
  int nodes = 1;
  int window = 256;
  int count = 20'000;
  int payload = 1024;
  bool fsync = true;
  // A waits with a `wait` request after each send's reply, rather than with the send's own
  // wait_rid (docs/protocol.md): the workload as measured before sends could wait.
  bool wait_request = false;
  // B acknowledges each delivery (`ack` with start) before it completes it, as the C++ and
  // Python Agents do, rather than completing it at once.
  bool ack = false;
  bool json = false;
  // The agent protocol version the bench's agents speak: 2 batches requests and reads batches.
  int protocol = 2;
  // How the bench's agents reach their daemon: "stream" (the daemon's stream socket, as the
  // clients do by default) or "zeromq" (its ZeroMQ agent socket).
  std::string transport = "stream";
  // "curve" (each daemon with a key of its own, listed in the other's [[peers]]) or "none".
  std::string peer_security = "curve";
  std::string handoffd = HANDOFF_BENCH_HANDOFFD;
  std::string extra_node_config;  // more [node] lines, from --node-config
};

struct Daemon {
  std::string name, endpoint;
  pid_t pid = -1;
};

// What the shipped systemd unit sets (config/handoffd.service.in): glibc's cache of freed
// blocks per thread raised from 7 to 256 (docs/operations.md, "The process").
inline constexpr const char* kUnitGlibcTunables = "glibc.malloc.tcache_count=256";
// The daemons' GLIBC_TUNABLES: the benchmark's own environment's when it sets one (to measure
// another setting, or glibc's default with glibc.malloc.tcache_count=7), else the unit's, so
// that the figures are those of a daemon run as installed.
std::string DaemonGlibcTunables();

// Config lines for one node's CURVE key: `own` for its [node] table (peer_security and, with
// CURVE, its secret_key_file), `listed` for its [[peers]] entry on the others (its public_key).
struct PeerKey {
  std::string own, listed;
};
// Makes a key per node in `dir` (none with peer_security = "none"); nullopt, with a message on
// stderr, if a key cannot be made.
std::optional<std::map<std::string, PeerKey>> PeerKeys(const Options& o, const std::string& dir,
                                                       const std::vector<std::string>& nodes);

// Starts one handoffd with its config (the options' node settings and `extra`) in `dir`.
void StartDaemon(const Options& o, const std::string& dir, Daemon& d, const std::string& extra);

// Waits until the daemon answers `status` and sees all its peers connected.
bool WaitReady(const Daemon& d);

// The daemon's commit count (each one fsync'd when fsync is on); -1 if it does not answer.
int64_t Commits(const Daemon& d);
// The bytes of the write-ahead log records it wrote (status `log_bytes`); -1 likewise.
int64_t LogBytes(const Daemon& d);

// What a daemon holds at the end of a run: its resident memory (now and at its peak), its
// data file (apparent size and blocks on disk), and how many ended intents it purged.
struct Footprint {
  int64_t rss_kb = -1, peak_rss_kb = -1;
  int64_t file_bytes = -1, file_disk_bytes = -1;
  int64_t purged = -1, live_data_bytes = -1;
  int64_t commit_us_avg = -1;  // the daemon's average commit (apply and sync), since it started
};
Footprint Measure(const Daemon& d, const std::string& dir);

// The `p` quantile (0 to 1) of `v`, which it reorders; 0 for none.
int64_t Percentile(std::vector<int64_t>& v, double p);

// SIGTERM, and waits for it to exit.
void StopDaemon(Daemon& d);

}  // namespace handoff::bench

#endif  // HANDOFF_TESTS_BENCH_BENCH_DAEMONS_H_
