// RunShell: runs `/bin/sh -c command` with the given stdin and extra environment, collects its
// stdout, and stops it early when asked.
//
// The command runs under a guardian: a forked copy of this process that leads a process group
// of its own, starts the shell in it, and holds the read end of a pipe whose write end only
// this process has. When this process dies, by any signal, the pipe closes and the guardian
// kills the whole group (SIGKILL): the shell and everything it forked, however deep, so a
// SIGKILLed `handoffctl serve` leaves nothing working on an intent it no longer holds. The
// command's stderr is inherited.
//
// Thread safety: call from one thread; `should_stop` is polled from that thread.

#ifndef HANDOFF_CLI_SUBPROCESS_H_
#define HANDOFF_CLI_SUBPROCESS_H_

#include <functional>
#include <map>
#include <string>

#include "handoff/status.h"

namespace handoff::cli {

struct ShellResult {
  int exit_code = 0;             // the command's exit status, or 128 + signal if a signal ended it
  bool stopped = false;          // ended because should_stop() turned true
  bool too_much_output = false;  // stopped for writing more than max_output bytes
  std::string out;               // everything it wrote to stdout (at most max_output bytes)
};

// A command that writes more than `max_output` bytes is stopped like one asked to stop
// (SIGTERM to its group, SIGKILL after a grace period), with too_much_output set.
Result<ShellResult> RunShell(const std::string& command, const std::string& input,
                             const std::map<std::string, std::string>& env,
                             const std::function<bool()>& should_stop, size_t max_output);

}  // namespace handoff::cli

#endif  // HANDOFF_CLI_SUBPROCESS_H_
