#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace handoff::testing {
namespace {

std::vector<std::string> MergeEnv(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    if (extra.count(entry.substr(0, entry.find('='))) == 0) out.push_back(entry);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string HandoffdPath() { return HANDOFF_TEST_HANDOFFD; }
std::string FaultLibPath() { return HANDOFF_TEST_FAULT_LIB; }
std::string HandoffctlPath() { return HANDOFF_TEST_HANDOFFCTL; }
std::string BinDir() {
  std::string path = HandoffctlPath();
  return path.substr(0, path.rfind('/'));
}

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env, const std::string& log_path) {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergeEnv(env);
  std::vector<char*> argp = Pointers(args);
  std::vector<char*> envp = Pointers(envs);
  int log = ::open(log_path.empty() ? "/dev/null" : log_path.c_str(),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
  ::close(log);
}

Process::~Process() { Kill(); }

bool Process::running() {
  if (reaped_) return false;
  pid_t r = ::waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

void Process::Signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

void Process::SignalGroup(int sig) {
  if (!reaped_) ::kill(-pid_, sig);
}

int Process::Wait(std::chrono::milliseconds timeout) {
  if (!WaitFor([this] { return !running(); }, timeout, std::chrono::milliseconds(5))) return -1;
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

void Process::Kill() {
  if (pid_ <= 0 || reaped_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

CommandResult Run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, const std::string& input,
                  std::chrono::milliseconds timeout) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergeEnv(env);
  std::vector<char*> argp = Pointers(args);
  std::vector<char*> envp = Pointers(envs);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (!input.empty()) {
    [[maybe_unused]] ssize_t n = ::write(in_pipe[1], input.data(), input.size());
  }
  ::close(in_pipe[1]);
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd p[2];
    int n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        which[n] = i;
        p[n++] = {fds[i], POLLIN, 0};
      }
    }
    if (::poll(p, static_cast<nfds_t>(n), 50) <= 0) continue;
    for (int k = 0; k < n; ++k) {
      if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t got = ::read(p[k].fd, buf, sizeof(buf));
      if (got > 0) {
        sinks[which[k]]->append(buf, static_cast<size_t>(got));
      } else {
        ::close(fds[which[k]]);
        fds[which[k]] = -1;
        --open_fds;
      }
    }
  }
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  int status = 0;
  bool done = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                      std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
                          deadline - std::chrono::steady_clock::now(),
                          std::chrono::steady_clock::duration(std::chrono::milliseconds(10)))),
                      std::chrono::milliseconds(5));
  if (!done) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    result.exit_code = -1;
    return result;
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace handoff::testing
