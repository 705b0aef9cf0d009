// handoffd as operators run it: no config at all, bad config, SIGTERM, a second daemon.

#include "support/daemon.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "handoff/client.h"
#include "net/endpoint.h"

namespace handoff::testing {
namespace {

TEST_CASE("WithNoConfigHandoffdAndHandoffctlFindEachOtherWithNoFlags") {
  TempDir dir;
  // The same environment for both, as in one shell; the state dir is the test's own.
  std::map<std::string, std::string> env = {{"XDG_STATE_HOME", dir.Sub("state")},
                                            {"HANDOFF_SOCKET", ""}};
  const std::string default_endpoint =
      "ipc:///tmp/handoff-" + std::to_string(::getuid()) + "/handoffd.sock";
  if (net::IpcListening(default_endpoint)) {
    MESSAGE("a handoffd already listens on the default endpoint; not starting another");
    return;
  }
  Process daemon({HandoffdPath()}, env, dir.Sub("handoffd.log"));
  REQUIRE(WaitFor(
      [&] {
        return Run({HandoffctlPath(), "status"}, env).exit_code == 0;
      },
      std::chrono::seconds(15)));
  auto sent = Run({HandoffctlPath(), "send", "--to", "agent://acme/test/worker", "--type",
                   "intent.defaults.v1", "--payload", "{\"a\": 1}"},
                  env);
  CHECK(sent.exit_code == 0);
  CHECK(sent.out.size() == 37);
  auto status = Run({HandoffctlPath(), "--json", "status"}, env);
  REQUIRE(status.exit_code == 0);
  Json s = Json::parse(status.out);
  CHECK(s["agent_endpoint"] == default_endpoint);
  CHECK(s["data_dir"] == dir.Sub("state") + "/handoff");
  CHECK(s["fsync"] == true);
  CHECK(s["intents"]["SUBMITTED"] == 1);
  daemon.Signal(SIGTERM);
  CHECK(daemon.Wait(std::chrono::seconds(10)) == 0);
}

TEST_CASE("ABadConfigStopsTheDaemonWithFileLineAndKey") {
  TempDir dir;
  std::string path = dir.Sub("bad.toml");
  std::ofstream(path) << "[node]\nname = \"node-a\"\nfsynk = true\n";
  auto r = Run({HandoffdPath(), "--config", path});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(path + ":3:1: unknown key 'fsynk' in [node]") != std::string::npos);

  auto missing = Run({HandoffdPath(), "--config", dir.Sub("nope.toml")});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("cannot read config file") != std::string::npos);

  std::string good = dir.Sub("good.toml");
  std::ofstream(good) << "[node]\nname = \"node-z\"\nfsync = false\n";
  auto check = Run({HandoffdPath(), "--config", good, "--check-config"});
  CHECK(check.exit_code == 0);
  CHECK(check.out.find("name = node-z") != std::string::npos);
  CHECK(check.out.find("fsync = false") != std::string::npos);
}

TEST_CASE("SigtermStopsCleanlyAndASecondDaemonIsRefused") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();

  // Same data directory, other endpoint: the lock refuses it.
  std::string other = dir.Sub("other.toml");
  std::ofstream(other) << "[node]\nname = \"node-a\"\ndata_dir = \"" << daemon.data_dir()
                       << "\"\nagent_endpoint = \"ipc://" << dir.Sub("other.sock") << "\"\n";
  auto second = Run({HandoffdPath(), "--config", other});
  CHECK(second.exit_code == 1);
  CHECK(second.err.find("in use by another handoffd") != std::string::npos);

  // Same endpoint, other data directory: refused, and the first keeps its socket.
  std::string same = dir.Sub("same.toml");
  std::ofstream(same) << "[node]\nname = \"node-a\"\ndata_dir = \"" << dir.Sub("d2")
                      << "\"\nagent_endpoint = \"" << daemon.endpoint() << "\"\n";
  auto third = Run({HandoffdPath(), "--config", same});
  CHECK(third.exit_code == 1);
  CHECK(third.err.find("already listening") != std::string::npos);
  auto client = daemon.Connect();
  CHECK(client->NodeStatus().ok());

  CHECK(daemon.Stop() == 0);
  CHECK(daemon.Log().find("stopping") != std::string::npos);
}

TEST_CASE("AClientFacingAStalledOrVanishedDaemonGetsAClearErrorInBoundedTime") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  ClientOptions options = daemon.client_options();
  options.request_timeout = std::chrono::seconds(1);
  auto client = Client::Connect(options);
  REQUIRE(client.ok());
  SendRequest req;
  req.to_agent = "agent://acme/test/worker";
  req.intent_type = "intent.stall.v1";
  auto receipt = (*client)->Send(req);
  REQUIRE(receipt.ok());

  daemon.Signal(SIGSTOP);
  auto start = std::chrono::steady_clock::now();
  auto got = (*client)->Get(receipt->intent_id);
  CHECK(got.status().IsUnavailable());
  CHECK(got.status().message().find("did not answer") != std::string::npos);
  auto waited = (*client)->Wait(receipt->intent_id, std::chrono::hours(1));
  CHECK(waited.status().IsUnavailable());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
  daemon.Signal(SIGCONT);

  // The same client works again once the daemon answers.
  REQUIRE(
      WaitFor([&] { return (*client)->Get(receipt->intent_id).ok(); }, std::chrono::seconds(10)));
  daemon.Kill();
  start = std::chrono::steady_clock::now();
  CHECK((*client)->Get(receipt->intent_id).status().IsUnavailable());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(Client::Connect(options).status().IsUnavailable());
}

}  // namespace
}  // namespace handoff::testing
