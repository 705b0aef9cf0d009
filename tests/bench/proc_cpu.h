// CPU time from /proc: of a process, of each of its threads by role, and of this process, so
// that handoff-bench can say who used the machine's cores.
#ifndef HANDOFF_TESTS_BENCH_PROC_CPU_H_
#define HANDOFF_TESTS_BENCH_PROC_CPU_H_

#include <sys/types.h>

#include <map>
#include <string>

namespace handoff::bench {

// CPU seconds (user + system) a process has used, its exited threads included; -1 if unreadable.
double CpuSeconds(pid_t pid);

// CPU seconds this process has used.
double SelfCpuSeconds();

// CPU seconds of each live thread of a process, keyed by thread id, with the thread's role:
// `main_role` for the main thread, "committer" and "agent_b" for the threads handoffd and
// handoff-bench name so, "zmq_io" for ZeroMQ's I/O threads, "other" for the rest.
struct ThreadCpu {
  std::string role;
  double seconds;
};
std::map<pid_t, ThreadCpu> ThreadsCpu(pid_t pid, const std::string& main_role);

// CPU seconds by role between two ThreadsCpu snapshots of one process.
std::map<std::string, double> CpuByRole(const std::map<pid_t, ThreadCpu>& before,
                                        const std::map<pid_t, ThreadCpu>& after);

}  // namespace handoff::bench

#endif  // HANDOFF_TESTS_BENCH_PROC_CPU_H_
