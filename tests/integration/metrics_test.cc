// Prometheus metrics from a real handoffd: GET /metrics is scraped while work flows, and its
// counters are checked against what the test did.

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "support/agent_pool.h"
#include "support/cluster.h"
#include "support/daemon.h"

namespace handoff::testing {
namespace {

constexpr const char* kWorker = "agent://acme/test/worker";

// The samples of one exposition: "name{labels}" -> value.
std::map<std::string, double> Scrape(int port) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(10, 0);
  auto res = http.Get("/metrics");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type").find("text/plain; version=0.0.4") == 0);
  std::map<std::string, double> samples;
  std::istringstream lines(res->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

SendRequest Work(int64_t n) {
  SendRequest req;
  req.to_agent = kWorker;
  req.intent_type = "intent.metrics.v1";
  req.payload = {{"n", n}};
  req.lease = std::chrono::milliseconds(300);
  req.max_attempts = 3;
  return req;
}

TEST_CASE("MetricsCountWhatHappened") {
  TempDir dir;
  const int port = FreeTcpPort();
  Daemon daemon(dir, "node-a", "metrics_endpoint = \"127.0.0.1:" + std::to_string(port) + "\"");
  daemon.Start();
  auto client = daemon.Connect();

  // Three complete, one fails for good (a dead letter), one is abandoned once (its lease runs
  // out and it is delivered again) and then completes.
  std::atomic<bool> abandoned{false};
  AgentPool agents(daemon, kWorker, 1, [&](Task& task) {
    const int64_t n = task.payload().value("n", int64_t{0});
    if (n == -1) return Outcome::Fail("bad_input", "n must not be negative");
    if (n == -2 && !abandoned.exchange(true)) return Outcome::Abandon();
    return Outcome::Complete({{"n", n}});
  });
  std::vector<std::string> ids;
  for (int64_t n : {1, 2, 3, -1, -2}) {
    auto r = client->Send(Work(n));
    REQUIRE(r.ok());
    ids.push_back(r->intent_id);
  }
  for (const std::string& id : ids) REQUIRE(client->Wait(id, std::chrono::seconds(30)).ok());

  auto m = Scrape(port);
  CHECK(m["handoff_intents_sent_total"] == 5);
  CHECK(m["handoff_intents_completed_total"] == 4);
  CHECK(m["handoff_intents_failed_total"] == 1);
  CHECK(m["handoff_intents_dead_lettered_total"] == 1);
  CHECK(m["handoff_lease_expiries_total"] == 1);
  CHECK(m["handoff_intents_redelivered_total{cause=\"lease_expiry\"}"] == 1);
  CHECK(m["handoff_intents_redelivered_total{cause=\"agent_failure\"}"] == 0);
  CHECK(m["handoff_intents_delivered_total"] == 6);
  CHECK(m["handoff_intents{status=\"COMPLETED\"}"] == 4);
  CHECK(m["handoff_intents{status=\"FAILED\"}"] == 1);
  CHECK(m["handoff_intents{status=\"SUBMITTED\"}"] == 0);
  CHECK(m["handoff_commit_seconds_count"] >= 1);
  CHECK(m["handoff_commit_seconds_bucket{le=\"+Inf\"}"] == m["handoff_commit_seconds_count"]);
  CHECK(m["handoff_fsync_seconds_count"] == m["handoff_commit_seconds_count"]);
  CHECK(m["handoff_batch_size_sum"] >= 5);
  // Five intents, each a record of ~200 bytes written at least twice, with its events.
  CHECK(m["handoff_log_bytes_total"] > 2000);
  CHECK(m["handoff_accepting_sends"] == 1);
  CHECK(m["handoff_map_size_bytes"] == 1 << 30);
  CHECK(m["handoff_data_bytes"] > 0);
  CHECK(m[std::string("handoff_agent_receivers{address=\"") + kWorker + "\"}"] == 1);
  CHECK(m[std::string("handoff_agent_in_flight_intents{address=\"") + kWorker + "\"}"] == 0);
  // The log says what happened and what to do.
  const std::string log = daemon.Log();
  CHECK(log.find("(intent.metrics.v1, agent://node-a/local/anonymous -> agent://acme/test/worker) "
                 "is a dead letter: FAILED after 1 attempt(s): bad_input: n must not be "
                 "negative; `handoffctl replay ") != std::string::npos);
  CHECK(log.find("1 lease(s) expired, 0 retryable failure(s), 0 push(es) to vanished agents "
                 "since the last report: delivered again; latest: intent ") != std::string::npos);

  // Work waiting for an address nobody serves shows as queued.
  SendRequest idle = Work(7);
  idle.to_agent = "agent://acme/test/idle";
  REQUIRE(client->Send(idle).ok());
  REQUIRE(client->Send(idle).ok());
  m = Scrape(port);
  CHECK(m["handoff_agent_queued_intents{address=\"agent://acme/test/idle\"}"] == 2);
  CHECK(m["handoff_intents_sent_total"] == 7);
}

TEST_CASE("PeerMetricsShowTheLinkAndItsOutbox") {
  TempDir dir;
  const int port = FreeTcpPort();
  Cluster cluster(dir,
                  {{"node-a", {}, "metrics_endpoint = \"127.0.0.1:" + std::to_string(port) + "\""},
                   {"node-b", {"agent://acme/far/*"}, ""}});
  cluster.StartAll();
  cluster.WaitConnected();
  auto m = Scrape(port);
  CHECK(m["handoff_peer_connected{peer=\"node-b\"}"] == 1);
  CHECK(m["handoff_peer_outbox_depth{peer=\"node-b\"}"] == 0);
  CHECK(m.count("handoff_peer_retransmissions_total{peer=\"node-b\"}") == 1);
  CHECK(m["handoff_peer_auth_failures_total{peer=\"node-b\"}"] == 0);
  // node-b stops: what is sent to it waits in the outbox, and ages.
  cluster["node-b"].Signal(SIGSTOP);
  auto client = cluster["node-a"].Connect();
  SendRequest req;
  req.to_agent = "agent://acme/far/worker";
  req.intent_type = "intent.far.v1";
  REQUIRE(client->Send(req).ok());
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    m = Scrape(port);
    seen = m["handoff_peer_outbox_depth{peer=\"node-b\"}"] == 1 &&
           m["handoff_peer_oldest_pending_age_seconds{peer=\"node-b\"}"] > 0 &&
           m["handoff_peer_connected{peer=\"node-b\"}"] == 0;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(seen);
  // The gauge reads the ack's age when scraped; the loop says the link is down on its next
  // turn, a moment later.
  bool said_down = false;
  for (int i = 0; i < 200 && !said_down; ++i) {
    said_down = cluster["node-a"].Log().find("link to node-b is down: nothing heard for") !=
                std::string::npos;
    if (!said_down) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(said_down);
  cluster["node-b"].Signal(SIGCONT);
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    back = cluster["node-a"].Log().find("link to node-b is up after") != std::string::npos;
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(back);
  CHECK(cluster["node-a"].Log().find("message(s) unacknowledged, sending them") !=
        std::string::npos);
}

TEST_CASE("AMetricsEndpointThatCannotBeUsedStopsStartUpWithAClearError") {
  TempDir dir;
  auto config = [&](const std::string& value) {
    const std::string path = dir.Sub("m.toml");
    std::ofstream(path) << "[node]\nname = \"node-m\"\ndata_dir = \"" << dir.Sub("data")
                        << "\"\nagent_endpoint = \"ipc://" << dir.Sub("m.sock")
                        << "\"\nmetrics_endpoint = \"" << value << "\"\n";
    return path;
  };
  auto bad = Run({HandoffdPath(), "--config", config("9464"), "--check-config"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("must be host:port") != std::string::npos);
  auto port = Run({HandoffdPath(), "--config", config("127.0.0.1:70000"), "--check-config"});
  CHECK(port.exit_code == 1);
  CHECK(port.err.find("the port must be 1 to 65535") != std::string::npos);
  // A port another process holds: start-up fails and says so.
  httplib::Server squatter;
  const int taken = squatter.bind_to_any_port("127.0.0.1");
  REQUIRE(taken > 0);
  auto in_use = Run({HandoffdPath(), "--config", config("127.0.0.1:" + std::to_string(taken))}, {},
                    {}, std::chrono::seconds(20));
  CHECK(in_use.exit_code == 1);
  CHECK(in_use.err.find("cannot listen on metrics_endpoint") != std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
