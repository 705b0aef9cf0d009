#include "node/waiters.h"

namespace handoff::node {

void WaiterSet::Add(Waiter waiter) {
  const IntentId id = waiter.id;
  auto d = by_deadline_.emplace(waiter.deadline_ms, std::move(waiter));
  by_intent_.emplace(id, d);
}

std::vector<Waiter> WaiterSet::TakeFor(const IntentId& id) {
  std::vector<Waiter> out;
  auto [first, last] = by_intent_.equal_range(id);
  for (auto it = first; it != last; ++it) {
    out.push_back(std::move(it->second->second));
    by_deadline_.erase(it->second);
  }
  by_intent_.erase(first, last);
  return out;
}

void WaiterSet::Remove(const Waiter& w) {
  auto [first, last] = by_intent_.equal_range(w.id);
  for (auto it = first; it != last; ++it) {
    const auto d = it->second;
    if (d->first == w.deadline_ms && d->second.routing_id == w.routing_id &&
        d->second.rid == w.rid) {
      by_deadline_.erase(d);
      by_intent_.erase(it);
      return;
    }
  }
}

std::vector<Waiter> WaiterSet::TakeExpired(int64_t now_ms) {
  std::vector<Waiter> out;
  while (!by_deadline_.empty() && by_deadline_.begin()->first <= now_ms) {
    const auto d = by_deadline_.begin();
    auto [first, last] = by_intent_.equal_range(d->second.id);
    for (auto it = first; it != last; ++it) {
      if (it->second == d) {
        by_intent_.erase(it);
        break;
      }
    }
    out.push_back(std::move(d->second));
    by_deadline_.erase(d);
  }
  return out;
}

std::optional<int64_t> WaiterSet::NextDeadline() const {
  if (by_deadline_.empty()) return std::nullopt;
  return by_deadline_.begin()->first;
}

}  // namespace handoff::node
