// AgentPool: real C++ Agents in threads, serving one address on one daemon, noting every intent
// they were handed (the test's effect ledger).

#ifndef HANDOFF_TESTS_SUPPORT_AGENT_POOL_H_
#define HANDOFF_TESTS_SUPPORT_AGENT_POOL_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "handoff/agent.h"
#include "support/daemon.h"

namespace handoff::testing {

class AgentPool {
 public:
  // Without a handler, agents answer {"n": payload.n, "double": 2 * payload.n}.
  AgentPool(const Daemon& daemon, const std::string& address, int count, Handler handler = nullptr);
  ~AgentPool();
  // How many times an intent reached an agent (0 if never).
  int Handled(const std::string& id);
  size_t Distinct();

 private:
  std::vector<std::unique_ptr<Agent>> agents_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, int> handled_;
};

// The default handler's result for payload {"n": n}.
Json Doubled(int64_t n);
// The work most tests hand off: {"n": n}, of type intent.test.double.v1, to `to`.
SendRequest DoubleWork(int64_t n, const std::string& to,
                       std::chrono::milliseconds lease = std::chrono::seconds(2));

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_AGENT_POOL_H_
