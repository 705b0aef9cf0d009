#include "support/agent_pool.h"

#include <doctest/doctest.h>

namespace handoff::testing {

Json Doubled(int64_t n) { return Json{{"n", n}, {"double", 2 * n}}; }

AgentPool::AgentPool(const Daemon& daemon, const std::string& address, int count, Handler handler) {
  if (!handler) {
    handler = [](Task& task) {
      return Outcome::Complete(Doubled(task.payload().value("n", int64_t{-1})));
    };
  }
  for (int i = 0; i < count; ++i) {
    AgentOptions options;
    options.address = address;
    options.client = daemon.client_options();
    options.refresh_interval = std::chrono::milliseconds(200);
    auto agent = Agent::Connect(options);
    REQUIRE(agent.ok());
    agents_.push_back(std::move(agent).value());
  }
  for (auto& agent : agents_) {
    threads_.emplace_back([this, a = agent.get(), handler] {
      Status s = a->Run([this, &handler](Task& task) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++handled_[task.intent_id()];
        }
        return handler(task);
      });
      CHECK(s.ok());
    });
  }
}

AgentPool::~AgentPool() {
  for (auto& agent : agents_) agent->Stop();
  for (auto& t : threads_) t.join();
}

int AgentPool::Handled(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handled_.find(id);
  return it == handled_.end() ? 0 : it->second;
}

size_t AgentPool::Distinct() {
  std::lock_guard<std::mutex> lock(mu_);
  return handled_.size();
}

SendRequest DoubleWork(int64_t n, const std::string& to, std::chrono::milliseconds lease) {
  SendRequest req;
  req.to_agent = to;
  req.from_agent = "agent://acme/test/sender";
  req.intent_type = "intent.test.double.v1";
  req.payload = {{"n", n}};
  req.lease = lease;
  return req;
}

}  // namespace handoff::testing
