// handoffctl serve: any program as an agent, killed with SIGKILL mid-work and resumed.

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>

#include "handoff/client.h"
#include "support/daemon.h"

namespace handoff::testing {
namespace {

constexpr const char* kProcessor = "agent://acme/test/processor";

// A worker in five steps with a checkpoint after each. On attempt 1 it stops after step 2 and
// waits to be killed; any later attempt resumes from the checkpoint and finishes.
constexpr const char* kStepScript = R"(#!/bin/sh
start=$(printf '%s' "$HANDOFF_CHECKPOINT" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')
start=${start:-0}
step=$start
while [ "$step" -lt 5 ]; do
  step=$((step + 1))
  handoffctl checkpoint "$HANDOFF_INTENT_ID" --state "{\"step\":$step}" || exit 9
  if [ "$step" -eq 2 ] && [ "$HANDOFF_ATTEMPT" = 1 ]; then
    while true; do sleep 0.05; done
  fi
done
echo "{\"resumed_from\":$start,\"attempt\":$HANDOFF_ATTEMPT,\"type\":\"$HANDOFF_INTENT_TYPE\"}"
)";

std::string WriteScript(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.Sub(name);
  std::ofstream(path) << text;
  ::chmod(path.c_str(), 0755);
  return path;
}

// Hands the processor five records with a 1 s lease, so a killed agent's attempt ends soon.
std::string SendProcessing(Client& client) {
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.handoff.process.v1";
  req.payload = {{"records", 5}};
  req.lease = std::chrono::seconds(1);
  auto receipt = client.Send(req);
  REQUIRE(receipt.ok());
  return receipt->intent_id;
}

std::unique_ptr<Process> StartServe(const Daemon& daemon, const TempDir& dir,
                                    const std::string& command, const std::string& log) {
  return std::make_unique<Process>(
      std::vector<std::string>{HandoffctlPath(), "serve", "--as", kProcessor, "--exec", command},
      daemon.Env(), dir.Sub(log));
}

TEST_CASE("AnAgentKilledMidWorkResumesFromItsCheckpointOnAttempt2") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  std::string script = WriteScript(dir, "steps.sh", kStepScript);
  auto client = daemon.Connect();

  const std::string id = SendProcessing(*client);

  auto serve = StartServe(daemon, dir, "exec sh " + script, "serve1.log");
  REQUIRE(WaitFor(
      [&] {
        auto in = client->Get(id);
        return in.ok() && in->checkpoint == Json{{"step", 2}};
      },
      std::chrono::seconds(20)));
  serve->Signal(SIGKILL);  // serve only: its command must die with it (its guardian sees to it)
  serve->Wait(std::chrono::seconds(5));

  // The lease ran out while no agent held it; the intent waits, queued with its checkpoint.
  REQUIRE(WaitFor(
      [&] {
        auto in = client->Get(id);
        return in.ok() && in->status == IntentStatus::kSubmitted;
      },
      std::chrono::seconds(20)));
  auto again = StartServe(daemon, dir, "exec sh " + script, "serve2.log");
  auto done = client->Wait(id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->delivery_attempt == 2);
  CHECK(done->result["resumed_from"] == 2);
  CHECK(done->result["attempt"] == 2);
  CHECK(done->result["type"] == "intent.handoff.process.v1");
  CHECK(done->checkpoint == Json{{"step", 5}});

  auto events = client->Events(id);
  REQUIRE(events.ok());
  std::vector<std::string> types;
  for (const Event& e : *events) types.push_back(e.event_type);
  // The dead serve may still be registered when the lease runs out; a push to it fails and is
  // recorded as intent.delivery_failed without using up an attempt.
  const auto failed_pushes = std::count(types.begin(), types.end(), "intent.delivery_failed");
  CHECK(failed_pushes <= 1);
  CHECK(std::count(types.begin(), types.end(), "intent.delivered") == 2 + failed_pushes);
  CHECK(std::count(types.begin(), types.end(), "intent.lease_expired") == 1);
  CHECK(std::count(types.begin(), types.end(), "intent.checkpointed") == 5);
  CHECK(types.back() == "intent.completed");
}

TEST_CASE("ACommandThatForksDiesWithAKilledServeAndItsAttemptGoesNoFurther") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  const std::string id = SendProcessing(*client);
  // The command forks a worker that checkpoints attempt 1 for ever (counting in its state),
  // and records its pid; `wait` keeps the shell itself alive too.
  const std::string pidfile = dir.Sub("worker.pid");
  const std::string command =
      "(n=0; while :; do n=$((n+1)); handoffctl checkpoint \"$HANDOFF_INTENT_ID\" "
      "--state \"{\\\"n\\\":$n}\" || exit 9; sleep 0.05; done) & echo $! > " +
      pidfile + "; wait";
  auto serve = StartServe(daemon, dir, command, "serve-fork.log");
  REQUIRE(WaitFor(
      [&] {
        auto in = client->Get(id);
        return in.ok() && in->checkpoint.is_object() && in->checkpoint.value("n", 0) >= 3;
      },
      std::chrono::seconds(20)));
  std::ifstream pid_in(pidfile);
  pid_t worker = 0;
  pid_in >> worker;
  REQUIRE(worker > 0);
  REQUIRE(::kill(worker, 0) == 0);

  serve->Signal(SIGKILL);  // serve only, not its process group
  serve->Wait(std::chrono::seconds(5));
  // Its command's whole tree is gone: the forked worker too.
  CHECK(WaitFor([&] { return ::kill(worker, 0) != 0 && errno == ESRCH; }, std::chrono::seconds(5)));
  // Nothing is left to report on attempt 1: its lease runs out and the intent waits for
  // another agent.
  CHECK(WaitFor(
      [&] {
        auto in = client->Get(id);
        return in.ok() && in->status == IntentStatus::kSubmitted;
      },
      std::chrono::seconds(20)));
}

TEST_CASE("ServeGivesTheCommandThePayloadAndTheIntentsIdentity") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  std::string script = WriteScript(dir, "env.sh", R"(#!/bin/sh
payload=$(cat)
printf '{"payload":%s,"id":"%s","type":"%s","attempt":"%s","checkpoint":"%s","socket":"%s"}\n' \
  "$payload" "$HANDOFF_INTENT_ID" "$HANDOFF_INTENT_TYPE" "$HANDOFF_ATTEMPT" \
  "$HANDOFF_CHECKPOINT" "$HANDOFF_SOCKET"
)");
  auto serve = StartServe(daemon, dir, "sh " + script, "serve.log");
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.env.v1";
  req.payload = {{"a", 1}, {"b", "two"}};
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  REQUIRE(done->status == IntentStatus::kCompleted);
  CHECK(done->result["payload"] == req.payload);
  CHECK(done->result["id"] == receipt->intent_id);
  CHECK(done->result["type"] == "intent.env.v1");
  CHECK(done->result["attempt"] == "1");
  CHECK(done->result["checkpoint"] == "");
  CHECK(done->result["socket"] == daemon.endpoint());
}

TEST_CASE("ANonZeroExitUnderServeIsRetriedWithBackoffThenFails") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto serve = StartServe(daemon, dir, "echo 'no such table' >&2; exit 3", "serve.log");
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.fail.v1";
  req.max_attempts = 3;
  req.retry_initial = std::chrono::milliseconds(200);
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kFailed);
  CHECK(done->delivery_attempt == 3);
  REQUIRE(done->error.has_value());
  CHECK(done->error->code == "delivery_attempts_exhausted");
  REQUIRE(done->last_error.has_value());
  CHECK(done->last_error->code == "exit_status");
  CHECK(done->last_error->message.find("status 3") != std::string::npos);
  // Two backoffs: 200 ms, then 400 ms.
  auto events = client->Events(receipt->intent_id);
  REQUIRE(events.ok());
  std::vector<int64_t> delays;
  for (const Event& e : *events) {
    if (e.event_type == "intent.retry_scheduled") delays.push_back(e.details["retry_in_ms"]);
  }
  CHECK(delays == std::vector<int64_t>{200, 400});
}

TEST_CASE("ACommandThatWritesWithoutEndIsStoppedAndItsIntentFails") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  // `yes` writes forever: serve keeps at most 128 MiB of it, stops the command, and fails the
  // intent for good instead of growing without bound.
  auto serve = StartServe(daemon, dir, "yes", "serve.log");
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.flood.v1";
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(60));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kFailed);
  REQUIRE(done->error.has_value());
  CHECK(done->error->code == "result_too_large");
  CHECK(done->error->message.find("more than 128MiB") != std::string::npos);
  CHECK(done->delivery_attempt == 1);
}

TEST_CASE("CancelingARunningIntentStopsItsCommandAndRefusesItsResult") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  std::string marker = dir.Sub("started");
  auto serve =
      StartServe(daemon, dir, "touch " + marker + "; while true; do sleep 0.05; done", "serve.log");
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.slow.v1";
  req.lease = std::chrono::milliseconds(600);  // heartbeats every 200 ms
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  REQUIRE(WaitFor([&] { return ::access(marker.c_str(), F_OK) == 0; }, std::chrono::seconds(20)));
  auto canceled = client->Cancel(receipt->intent_id, "changed my mind");
  REQUIRE(canceled.ok());
  CHECK(*canceled == IntentStatus::kCanceled);
  // serve learns at its next heartbeat and stops the command; it then serves the next intent.
  req.intent_type = "intent.next.v1";
  auto next = client->Send(req);
  REQUIRE(next.ok());
  REQUIRE(WaitFor(
      [&] {
        auto in = client->Get(next->intent_id);
        return in.ok() && in->status != IntentStatus::kSubmitted;
      },
      std::chrono::seconds(20)));
  auto first = client->Get(receipt->intent_id);
  REQUIRE(first.ok());
  CHECK(first->status == IntentStatus::kCanceled);
  CHECK(first->result.is_null());
}

TEST_CASE("ACancelStopsTheCommandWithinASecondAndACleanStopOfServeWarnsOfNothing") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  const std::string pidfile = dir.Sub("command.pid");
  // The default lease (30 s): the next heartbeat is 10 s away.
  auto serve = StartServe(daemon, dir, "echo $$ > " + pidfile + "; while true; do sleep 0.05; done",
                          "serve.log");
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.slow.v1";
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  pid_t command = 0;
  REQUIRE(WaitFor(
      [&] {
        std::ifstream in(pidfile);
        return static_cast<bool>(in >> command) && command > 0;
      },
      std::chrono::seconds(20)));
  REQUIRE(::kill(command, 0) == 0);
  const auto canceled_at = std::chrono::steady_clock::now();
  REQUIRE(client->Cancel(receipt->intent_id, "changed my mind").ok());
  REQUIRE(WaitFor([&] { return ::kill(command, 0) != 0 && errno == ESRCH; },
                  std::chrono::seconds(10), std::chrono::milliseconds(10)));
  const auto took = std::chrono::steady_clock::now() - canceled_at;
  MESSAGE("the command was stopped "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
          << " ms after the cancel");
  CHECK(took < std::chrono::milliseconds(2500));  // a second, with room for a loaded machine
  std::string log;
  REQUIRE(WaitFor(
      [&] {
        std::ifstream in(dir.Sub("serve.log"));
        log.assign(std::istreambuf_iterator<char>(in), {});
        return log.find("(canceled)") != std::string::npos;
      },
      std::chrono::seconds(5)));

  // SIGTERM while idle: serve stops, saying nothing it would warn of.
  serve->Signal(SIGTERM);
  CHECK(serve->Wait(std::chrono::seconds(10)) == 0);
  std::ifstream in(dir.Sub("serve.log"));
  log.assign(std::istreambuf_iterator<char>(in), {});
  INFO(log);
  CHECK(log.find(" warning ") == std::string::npos);
  CHECK(log.find(" error ") == std::string::npos);
}

TEST_CASE("ServeStartedBeforeItsDaemonWaitsForItAndThenServes") {
  TempDir dir;
  Daemon daemon(dir);  // not started yet
  auto serve = StartServe(daemon, dir, "cat", "serve-early.log");
  std::string log;
  REQUIRE(WaitFor(
      [&] {
        std::ifstream in(dir.Sub("serve-early.log"));
        log.assign(std::istreambuf_iterator<char>(in), {});
        return log.find("waiting for handoffd at " + daemon.endpoint()) != std::string::npos;
      },
      std::chrono::seconds(20)));
  CHECK(serve->running());
  daemon.Start();
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = kProcessor;
  req.intent_type = "intent.early.v1";
  req.payload = {{"n", 4}};
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->result == Json{{"n", 4}});
  // Stopped while it waits, it exits cleanly.
  auto waiting = StartServe(Daemon(dir, "node-z"), dir, "cat", "serve-waiting.log");
  REQUIRE(WaitFor(
      [&] {
        std::ifstream in(dir.Sub("serve-waiting.log"));
        std::string text((std::istreambuf_iterator<char>(in)), {});
        return text.find("waiting for handoffd") != std::string::npos;
      },
      std::chrono::seconds(20)));
  waiting->Signal(SIGTERM);
  CHECK(waiting->Wait(std::chrono::seconds(10)) == 0);
}

}  // namespace
}  // namespace handoff::testing
