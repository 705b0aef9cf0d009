// [node] update_delay across real daemons: the destination holds the news that an agent holds
// an intent for its next change, and the origin still hears of it when it is due, and when the
// destination is killed while holding it.

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <optional>
#include <sstream>
#include <string>

#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/cluster.h"

namespace handoff::testing {
namespace {

constexpr const char* kRemote = "agent://acme/remote/worker";

// The value of the unlabelled sample `name` at the metrics endpoint on `port`, if it answers.
std::optional<double> Metric(int port, const std::string& name) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(5, 0);
  auto res = http.Get("/metrics");
  if (!res || res->status != 200) return std::nullopt;
  std::istringstream lines(res->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

bool HistoryHas(Client& origin, const std::string& id, const std::string& type) {
  auto events = origin.Events(id);
  if (!events.ok()) return false;
  for (const Event& e : *events) {
    if (e.event_type == type && e.node == "node-b") return true;
  }
  return false;
}

// A send whose agent on node-b takes it and holds it until `release`.
struct HeldWork {
  explicit HeldWork(Cluster& cluster)
      : agents(cluster["node-b"], kRemote, 1, [this](Task&) {
          started.store(true);
          WaitFor([&] { return release.load(); }, std::chrono::seconds(60));
          return Outcome::Abandon();
        }) {}
  ~HeldWork() { release.store(true); }

  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  AgentPool agents;
};

std::string SendHeldWork(Client& origin) {
  SendRequest req = DoubleWork(1, kRemote, std::chrono::seconds(60));  // no expiry meanwhile
  auto receipt = origin.Send(req);
  REQUIRE(receipt.ok());
  return receipt->intent_id;
}

TEST_CASE("NewsThatAnAgentHoldsAForwardedIntentReachesTheOriginWhenDue") {
  TempDir dir;
  Cluster cluster(
      dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, "update_delay = \"300ms\""}});
  cluster.StartAll();
  HeldWork work(cluster);
  auto origin = cluster["node-a"].Connect();
  const std::string id = SendHeldWork(*origin);
  REQUIRE(WaitFor([&] { return work.started.load(); }, std::chrono::seconds(20)));
  // Delivered, acknowledged and started on node-b; nothing else changes, so the held update
  // goes alone once due, and the origin shows the intent held by the agent.
  REQUIRE(WaitFor([&] { return HistoryHas(*origin, id, "intent.in_progress"); },
                  std::chrono::seconds(20)));
  CHECK(HistoryHas(*origin, id, "intent.delivered"));
  auto here = origin->Get(id);
  REQUIRE(here.ok());
  CHECK(IsLeased(here->status));
}

TEST_CASE("AnUpdateHeldWhenTheDestinationIsKilledReachesTheOriginAfterItsRestart") {
  TempDir dir;
  // Held far longer than the test waits: only the restart can send it.
  const int metrics_port = FreeTcpPort();
  std::string node_b = "update_delay = \"1m\"\nmetrics_endpoint = \"127.0.0.1:";
  node_b += std::to_string(metrics_port);
  node_b += "\"";
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, node_b}});
  cluster.StartAll();
  HeldWork work(cluster);
  auto origin = cluster["node-a"].Connect();
  const std::string id = SendHeldWork(*origin);
  REQUIRE(WaitFor([&] { return work.started.load(); }, std::chrono::seconds(20)));
  // The destination has stored the delivery (its agent runs it) and holds the news of it.
  auto there = cluster["node-b"].Connect();
  REQUIRE(WaitFor(
      [&] {
        auto r = there->Get(id);
        return r.ok() && r->status == IntentStatus::kInProgress;
      },
      std::chrono::seconds(20)));
  CHECK_FALSE(HistoryHas(*origin, id, "intent.delivered"));
  CHECK(WaitFor([&] { return Metric(metrics_port, "handoff_updates_held") == 1.0; },
                std::chrono::seconds(10)));

  cluster["node-b"].Kill();
  cluster["node-b"].Start();
  REQUIRE(WaitFor([&] { return HistoryHas(*origin, id, "intent.delivered"); },
                  std::chrono::seconds(8)));
  CHECK(HistoryHas(*origin, id, "intent.in_progress"));
  CHECK(WaitFor([&] { return Metric(metrics_port, "handoff_updates_held") == 0.0; },
                std::chrono::seconds(10)));
  auto events = origin->Events(id);
  REQUIRE(events.ok());
  uint32_t seq = 0;
  for (const Event& e : *events) CHECK(e.seq == ++seq);  // in order, none twice
}

}  // namespace
}  // namespace handoff::testing
