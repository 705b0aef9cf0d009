// Daemon: a real handoffd process for integration tests, with its own config, data directory,
// ipc endpoint and log inside a test's TempDir.

#ifndef HANDOFF_TESTS_SUPPORT_DAEMON_H_
#define HANDOFF_TESTS_SUPPORT_DAEMON_H_

#include <map>
#include <memory>
#include <string>

#include "handoff/client.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace handoff::testing {

class Daemon {
 public:
  // `extra` is appended to the [node] table of the generated config (e.g. "fsync = false").
  Daemon(const TempDir& dir, std::string name = "node-a", std::string extra = "");
  ~Daemon();

  // Starts handoffd and waits (bounded) until it answers `status`. Fails the test otherwise.
  void Start();
  // Environment for the next Start()s, on top of this process's.
  void SetEnv(std::map<std::string, std::string> env) { env_ = std::move(env); }
  // The next Start()s preload the fault injector, controlled by `control_file`
  // (support/fault_inject.c); an empty path stops it.
  void InjectFaults(const std::string& control_file);
  // SIGKILL: no shutdown, no cleanup.
  void Kill();
  // SIGTERM and wait; returns the exit code.
  int Stop();
  bool running();
  // Sends `sig` to the daemon process (SIGSTOP/SIGCONT to stall it).
  void Signal(int sig);

  const std::string& endpoint() const { return endpoint_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string Log() const;

  ClientOptions client_options() const;
  std::unique_ptr<Client> Connect() const;
  // Environment for handoffctl: HANDOFF_SOCKET and a PATH that finds the binaries.
  std::map<std::string, std::string> Env() const;
  // Runs handoffctl with `args` against this daemon.
  CommandResult Ctl(const std::vector<std::string>& args, const std::string& input = {}) const;

 private:
  std::string name_;
  std::string endpoint_;
  std::string config_path_;
  std::string data_dir_;
  std::string log_path_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Process> process_;
};

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_DAEMON_H_
