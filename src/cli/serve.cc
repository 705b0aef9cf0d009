// handoffctl serve: makes any program an agent.
//
// For each delivered intent, runs `/bin/sh -c CMD` with the payload JSON on stdin and the
// intent's identity in the environment; the command's stdout is the result when it exits 0, a
// non-zero exit fails the intent (retryable). While it runs the Agent keeps the lease alive; if
// the intent is canceled, or serve itself is asked to stop, the command is stopped (SIGTERM,
// then SIGKILL) and nothing is reported, so a stopped serve's intent is delivered again after
// its lease.

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "base/defaults.h"
#include "base/names.h"
#include "base/units.h"
#include "cli/commands.h"
#include "cli/render.h"
#include "cli/subprocess.h"
#include "handoff/agent.h"

namespace handoff::cli {
namespace {

std::atomic<bool> g_stop{false};
// How often serve looks again for a daemon that is not running.
constexpr std::chrono::milliseconds kConnectRetry{500};
Agent* g_agent = nullptr;

extern "C" void OnServeSignal(int) {
  g_stop.store(true);
  if (g_agent != nullptr) g_agent->Stop();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\n')) ++start;
  return s.substr(start);
}

// A command's stdout as a result: JSON if it parses, else the text as a JSON string, null if
// empty.
Json ResultFrom(const std::string& out) {
  std::string text = Trim(out);
  if (text.empty()) return nullptr;
  auto parsed = ParseJsonText(text, "the result");
  return parsed.ok() ? std::move(parsed).value() : Json(text);
}

// True if the command ran `handoffctl request-approval` for this delivery: the intent now waits
// for a human, and its exit status is not the outcome. Asked on a connection serve keeps (one
// made per command took longer than a short command: a ZeroMQ context, its threads, the
// handshake).
bool AskedAHuman(Client& client, const Intent& in) {
  auto now = client.Get(in.intent_id);
  return now.ok() && now->status == IntentStatus::kWaiting && now->waiting_reason == "HUMAN" &&
         now->delivery_attempt == in.delivery_attempt;
}

Outcome RunCommand(const std::string& command, const std::string& endpoint, Client& asker,
                   Task& task) {
  const Intent& in = task.intent();
  std::map<std::string, std::string> env = {
      {"HANDOFF_INTENT_ID", in.intent_id},
      {"HANDOFF_INTENT_TYPE", in.intent_type},
      {"HANDOFF_ATTEMPT", std::to_string(in.delivery_attempt)},
      {"HANDOFF_CHECKPOINT", in.checkpoint.is_null() ? "" : CompactJson(in.checkpoint)},
      {"HANDOFF_FROM_AGENT", in.from_agent},
      {"HANDOFF_TO_AGENT", in.to_agent},
      {"HANDOFF_CORRELATION_ID", in.correlation_id},
      // The answer to this agent's own question (request-approval), when it brings it back.
      {"HANDOFF_APPROVAL",
       in.approval && in.approval->mid_work && in.approval->decided()
           ? ApprovalJson(*in.approval).dump(-1, ' ', false, OrderedJson::error_handler_t::replace)
           : std::string()},
      {kSocketEnv, endpoint},
  };
  const auto started = std::chrono::steady_clock::now();
  auto ran = RunShell(
      command, CompactJson(in.payload) + "\n", env,
      [&] { return g_stop.load() || task.canceled() || task.lease_lost(); }, kMaxJsonInputBytes);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  if (!ran.ok()) {
    spdlog::error("intent {}: cannot run the command: {}", in.intent_id, ran.status().ToString());
    return Outcome::Fail("exec_error", ran.status().message(), /*retryable=*/true);
  }
  if (ran->too_much_output) {
    spdlog::warn("intent {} attempt {}: the command wrote more than {} and was stopped",
                 in.intent_id, in.delivery_attempt, FormatByteSize(kMaxJsonInputBytes));
    return Outcome::Fail("result_too_large",
                         "the command wrote more than " + FormatByteSize(kMaxJsonInputBytes) +
                             " to stdout; a result is at most max_payload_bytes",
                         /*retryable=*/false);
  }
  if (ran->stopped) {
    const char* why = task.canceled() ? "canceled" : task.lease_lost() ? "lease lost" : "stopping";
    spdlog::info("intent {} attempt {}: command stopped after {} ms ({})", in.intent_id,
                 in.delivery_attempt, ms, why);
    // Canceled or taken over: nothing to report. Stopping: the lease runs out and the intent
    // goes to the next agent with its checkpoint.
    return Outcome::Abandon();
  }
  spdlog::info("intent {} attempt {}: command exited {} after {} ms", in.intent_id,
               in.delivery_attempt, ran->exit_code, ms);
  if (AskedAHuman(asker, in)) {
    spdlog::info("intent {} waits for a human decision; it comes back when one is made",
                 in.intent_id);
    return Outcome::Abandon();
  }
  if (ran->exit_code != 0) {
    return Outcome::Fail("exit_status",
                         "command exited with status " + std::to_string(ran->exit_code),
                         /*retryable=*/true);
  }
  return Outcome::Complete(ResultFrom(ran->out));
}

}  // namespace

int Serve(const Global& g, const ServeFlags& f) {
  auto client = MakeClientOptions(g);
  if (!client.ok()) return Error(client.status());
  AgentOptions options;
  options.address = f.as;
  options.client = std::move(client).value();
  options.credit = f.credit;
  if (!f.heartbeat.empty()) {
    auto ms = ParseDurationMs(f.heartbeat);
    if (!ms.ok()) return Error(ms.status());
    options.heartbeat_interval = std::chrono::milliseconds(*ms);
  }
  if (Status valid = ValidateAgentAddress(f.as); !valid.ok()) return Error(valid);
  std::string endpoint =
      options.client.endpoint.empty() ? DefaultAgentEndpoint() : options.client.endpoint;
  struct sigaction stop {};
  stop.sa_handler = OnServeSignal;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);

  // An agent may start before its daemon (a host booting, the daemon restarting): it waits for
  // it, as it does for one that goes away later. A socket it may not use is an error at once.
  Result<std::unique_ptr<Agent>> agent = Status::Unavailable("not connected yet");
  bool told = false;
  while (!g_stop.load()) {
    if (Status probe = ProbeDaemon(endpoint); probe.IsIOError()) return Error(probe);
    agent = Agent::Connect(options);
    if (agent.ok() || !agent.status().IsUnavailable()) break;
    if (!told) {
      spdlog::info("waiting for handoffd at {}: {}", endpoint, agent.status().message());
      told = true;
    }
    std::this_thread::sleep_for(kConnectRetry);
  }
  if (g_stop.load()) return kExitOk;
  if (!agent.ok()) return Error(agent.status());
  auto asker = Client::Connect(options.client);
  if (!asker.ok()) return Error(asker.status());
  g_agent = agent->get();

  spdlog::info("serving {} with: {}", f.as, f.exec);
  Status s = (*agent)->Run([&](Task& task) { return RunCommand(f.exec, endpoint, **asker, task); });
  g_agent = nullptr;
  return s.ok() ? kExitOk : Error(s);
}

}  // namespace handoff::cli
