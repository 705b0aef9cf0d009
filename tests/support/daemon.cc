#include "support/daemon.h"

#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace handoff::testing {

Daemon::Daemon(const TempDir& dir, std::string name, std::string extra) : name_(std::move(name)) {
  endpoint_ = "ipc://" + dir.Sub(name_ + ".sock");
  config_path_ = dir.Sub(name_ + ".toml");
  data_dir_ = dir.Sub(name_ + "-data");
  log_path_ = dir.Sub(name_ + ".log");
  std::ofstream config(config_path_);
  config << "[node]\n"
         << "name = \"" << name_ << "\"\n"
         << "data_dir = \"" << data_dir_ << "\"\n"
         << "agent_endpoint = \"" << endpoint_ << "\"\n"
         << extra << "\n";
}

Daemon::~Daemon() {
  if (process_) process_->Kill();
}

void Daemon::Start() {
  REQUIRE_FALSE((process_ && process_->running()));
  process_ = std::make_unique<Process>(
      std::vector<std::string>{HandoffdPath(), "--config", config_path_}, env_, log_path_);
  bool ready = WaitFor(
      [&] {
        if (!process_->running()) return true;  // exited: reported below
        auto client = Client::Connect(client_options());
        return client.ok() && (*client)->NodeStatus().ok();
      },
      std::chrono::seconds(15), std::chrono::milliseconds(10));
  INFO("handoffd log:\n" << Log());
  REQUIRE(ready);
  REQUIRE(process_->running());
}

void Daemon::InjectFaults(const std::string& control_file) {
  if (control_file.empty()) {
    env_.erase("LD_PRELOAD");
    env_.erase("HANDOFF_FAULT_FILE");
    return;
  }
  env_["LD_PRELOAD"] = FaultLibPath();
  env_["HANDOFF_FAULT_FILE"] = control_file;
  // A sanitizer's runtime wants to come first; the injector is not instrumented.
  env_["ASAN_OPTIONS"] = "verify_asan_link_order=0";
}

void Daemon::Kill() {
  if (process_) process_->Kill();
}

int Daemon::Stop() {
  if (!process_) return -1;
  process_->Signal(SIGTERM);
  return process_->Wait(std::chrono::seconds(15));
}

bool Daemon::running() { return process_ && process_->running(); }

void Daemon::Signal(int sig) {
  if (process_) process_->Signal(sig);
}

std::string Daemon::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

ClientOptions Daemon::client_options() const {
  ClientOptions options;
  options.endpoint = endpoint_;
  options.request_timeout = std::chrono::seconds(5);
  options.resend_interval = std::chrono::milliseconds(500);
  return options;
}

std::unique_ptr<Client> Daemon::Connect() const {
  auto client = Client::Connect(client_options());
  REQUIRE(client.ok());
  return std::move(client).value();
}

std::map<std::string, std::string> Daemon::Env() const {
  const char* path = std::getenv("PATH");
  return {{"HANDOFF_SOCKET", endpoint_},
          {"PATH", BinDir() + ":" + (path ? path : "/usr/bin:/bin")}};
}

CommandResult Daemon::Ctl(const std::vector<std::string>& args, const std::string& input) const {
  std::vector<std::string> argv = {HandoffctlPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, Env(), input);
}

}  // namespace handoff::testing
