#include "bench/proc_cpu.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace handoff::bench {

namespace {

// CPU seconds (user + system) from a /proc .../stat file, and the command name in it; -1 if
// unreadable.
double StatCpuSeconds(const std::string& path, std::string* comm = nullptr) {
  std::ifstream stat(path);
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');  // the command name may hold spaces
  if (open == std::string::npos || close == std::string::npos || close < open) return -1;
  if (comm != nullptr) *comm = text.substr(open + 1, close - open - 1);
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

double CpuSeconds(pid_t pid) { return StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat"); }

std::map<pid_t, ThreadCpu> ThreadsCpu(pid_t pid, const std::string& main_role) {
  std::map<pid_t, ThreadCpu> threads;
  std::error_code ec;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const pid_t tid = static_cast<pid_t>(std::atoi(entry.path().filename().c_str()));
    std::string comm;
    const double seconds = StatCpuSeconds(entry.path() / "stat", &comm);
    if (tid <= 0 || seconds < 0) continue;  // the thread exited meanwhile
    std::string role = "other";
    if (tid == pid) {
      role = main_role;
    } else if (comm == "hoff-committer") {
      role = "committer";
    } else if (comm == "agent-b") {
      role = "agent_b";
    } else if (comm.rfind("ZMQbg/IO", 0) == 0) {
      role = "zmq_io";
    }
    threads[tid] = {role, seconds};
  }
  return threads;
}

std::map<std::string, double> CpuByRole(const std::map<pid_t, ThreadCpu>& before,
                                        const std::map<pid_t, ThreadCpu>& after) {
  std::map<std::string, double> roles;
  for (const auto& [tid, t] : after) {
    auto it = before.find(tid);
    roles[t.role] += t.seconds - (it == before.end() ? 0.0 : it->second.seconds);
  }
  return roles;
}

double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

}  // namespace handoff::bench
