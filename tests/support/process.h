// Child processes for integration tests: spawn, signal, reap, and run-to-completion with
// captured output. Every wait is bounded.

#ifndef HANDOFF_TESTS_SUPPORT_PROCESS_H_
#define HANDOFF_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace handoff::testing {

// Paths of the binaries under test, set by CMake.
std::string HandoffdPath();
// The fault injector to preload into handoffd (support/fault_inject.c).
std::string FaultLibPath();
std::string HandoffctlPath();
// The directory holding both, for PATH.
std::string BinDir();

// A running child in its own process group. Killed (SIGKILL, whole group) on destruction.
class Process {
 public:
  // Starts argv[0] with `argv`, extra environment, stdout/stderr appended to `log_path`
  // (or /dev/null if empty).
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::string& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);       // to the process
  void SignalGroup(int sig);  // to its whole process group
  // Waits up to `timeout` for it to exit; its exit code, or -1 on timeout, 128+sig if signaled.
  int Wait(std::chrono::milliseconds timeout);
  void Kill();  // SIGKILL to the group, then reap

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv to completion (at most `timeout`, then SIGKILL), feeding `input` on stdin.
CommandResult Run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {}, const std::string& input = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// How many times `what` occurs in `text` (log lines, say).
size_t Occurrences(const std::string& text, const std::string& what);

// Polls `condition` every `every` until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds every = std::chrono::milliseconds(20));

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_PROCESS_H_
