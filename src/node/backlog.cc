#include "node/backlog.h"

#include <algorithm>

namespace handoff::node {

void Backlog::Send(Outgoing m, const SendFn& send) {
  auto it = queues_.find(m.routing_id);
  if (it == queues_.end()) {
    if (send(m) == Sent::kTaken) return;
    it = queues_.emplace(m.routing_id, Queue()).first;
  }
  it->second.bytes += m.frame.size();
  total_bytes_ += m.frame.size();
  it->second.messages.push_back(std::move(m));
}

bool Backlog::Drain(Queue& q, const SendFn& send) {
  while (!q.messages.empty()) {
    if (send(q.messages.front()) == Sent::kFull) return false;
    const uint64_t size = q.messages.front().frame.size();
    q.bytes -= size;
    total_bytes_ -= size;
    q.messages.pop_front();
  }
  return true;
}

void Backlog::Flush(const SendFn& send) {
  for (auto it = queues_.begin(); it != queues_.end();) {
    it = Drain(it->second, send) ? queues_.erase(it) : std::next(it);
  }
}

void Backlog::Hold(const std::string& routing_id, uint64_t bytes) {
  held_[routing_id] += bytes;
  total_bytes_ += bytes;
}

void Backlog::Unhold(const std::string& routing_id, uint64_t bytes) {
  auto it = held_.find(routing_id);
  if (it == held_.end()) return;
  bytes = std::min(bytes, it->second);
  it->second -= bytes;
  total_bytes_ -= bytes;
  if (it->second == 0) held_.erase(it);
}

uint64_t Backlog::bytes(const std::string& routing_id) const {
  auto q = queues_.find(routing_id);
  auto h = held_.find(routing_id);
  return (q == queues_.end() ? 0 : q->second.bytes) + (h == held_.end() ? 0 : h->second);
}

bool Backlog::Over(const std::string& routing_id) const {
  const uint64_t mine = bytes(routing_id);
  return mine > connection_budget_ || (mine > 0 && total_bytes_ > total_budget_);
}

}  // namespace handoff::node
