#include "cli/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

extern char** environ;

namespace handoff::cli {
namespace {

constexpr int kPollMs = 100;
constexpr auto kTermGrace = std::chrono::seconds(2);

Status Errno(const char* what) {
  return Status::IOError(std::string(what) + ": " + std::strerror(errno));
}

// Closes every descriptor from `from` up, but `keep` (>= from; async-signal-safe).
void CloseFrom(int from, int keep) {
  if ((keep == from || ::syscall(SYS_close_range, from, keep - 1, 0) == 0) &&
      ::syscall(SYS_close_range, keep + 1, ~0U, 0) == 0) {
    return;
  }
  for (int fd = from; fd < 4096; ++fd) {  // kernels before 5.9
    if (fd != keep) ::close(fd);
  }
}

// Runs in the forked guardian (async-signal-safe calls only) and never returns: starts the
// command in a process group it leads, then waits for either the command to exit (exiting
// with its status: its code, or 128 + the signal that ended it) or the lifeline to close
// (killing the group, itself included).
[[noreturn]] void Guard(const int lifeline[2], const int in_pipe[2], const int out_pipe[2],
                        const char* command, char* const envp[]) {
  ::setpgid(0, 0);
  ::close(lifeline[1]);
  // serve stops a command with SIGTERM to the group; the guardian outlasts it to go on
  // watching, and the final SIGKILL takes it too.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ignore, nullptr);
  const pid_t child = ::fork();
  if (child < 0) ::_exit(127);
  if (child == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &dfl, nullptr);
    ::close(lifeline[0]);
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    const char* argv[] = {"/bin/sh", "-c", command, nullptr};
    ::execve("/bin/sh", const_cast<char* const*>(argv), envp);
    ::_exit(127);
  }
  // Only the command keeps the pipes (their readers and writers must see them close with it),
  // and nothing else of the parent's stays open here: not its sockets, nor the lifelines of
  // other commands, which would keep those open after the parent died.
  CloseFrom(STDERR_FILENO + 1, lifeline[0]);
  const int child_fd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  while (true) {
    pollfd fds[2] = {{lifeline[0], POLLIN, 0}, {child_fd, POLLIN, 0}};
    // Without pidfds (kernels before 5.3) the command's exit is polled for.
    const int ready = ::poll(fds, child_fd >= 0 ? 2 : 1, child_fd >= 0 ? -1 : 10);
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ::kill(0, SIGKILL);  // the parent is gone: the whole group goes
      ::_exit(137);
    }
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

std::vector<std::string> BuildEnv(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (extra.count(key) == 0) out.push_back(std::move(entry));
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

Result<ShellResult> RunShell(const std::string& command, const std::string& input,
                             const std::map<std::string, std::string>& env,
                             const std::function<bool()>& should_stop, size_t max_output) {
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return Errno("pipe");
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return Errno("pipe");
  }
  std::vector<std::string> env_strings = BuildEnv(env);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  int lifeline[2];
  if (::pipe2(lifeline, O_CLOEXEC) != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) ::close(fd);
    return Errno("pipe");
  }

  pid_t pid = ::fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    // The guardian. This process has threads, so only async-signal-safe calls from here on.
    Guard(lifeline, in_pipe, out_pipe, command.c_str(), envp.data());
  }
  // The write end stays open (and close-on-exec) until this process exits, however it exits.
  ::close(lifeline[0]);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  int in_fd = in_pipe[1];
  int out_fd = out_pipe[0];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);

  ShellResult result;
  size_t written = 0;
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  std::optional<std::chrono::steady_clock::time_point> term_sent;
  while (out_fd >= 0) {
    pollfd fds[2];
    int n = 0;
    fds[n++] = {out_fd, POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    int ready = ::poll(fds, static_cast<nfds_t>(n), kPollMs);
    if (ready < 0 && errno != EINTR) break;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      ssize_t got = ::read(out_fd, buf, sizeof(buf));
      if (got > 0 && !result.too_much_output) {
        const size_t room = max_output - result.out.size();
        result.out.append(buf, std::min(room, static_cast<size_t>(got)));
        if (static_cast<size_t>(got) > room) result.too_much_output = true;
      } else if (got > 0) {
        // Read and dropped while the command is being stopped, so that it never blocks.
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(out_fd);
        out_fd = -1;
      }
    }
    if (in_fd >= 0 && n > 1 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t put = ::write(in_fd, input.data() + written, input.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(in_fd);  // done, or the command does not read its input
        in_fd = -1;
      }
    }
    if (!result.stopped && (result.too_much_output || (should_stop && should_stop()))) {
      result.stopped = true;
      ::kill(-pid, SIGTERM);
      term_sent = std::chrono::steady_clock::now();
    }
    if (term_sent && std::chrono::steady_clock::now() - *term_sent > kTermGrace) {
      ::kill(-pid, SIGKILL);
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  if (out_fd >= 0) ::close(out_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Errno("waitpid");
  }
  ::close(lifeline[1]);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace handoff::cli
