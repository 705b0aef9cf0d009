#include "node/waiters.h"

namespace handoff::node {

void WaiterSet::Add(Waiter waiter) {
  by_intent_.emplace(waiter.id, waiter.deadline_ms);
  by_deadline_.emplace(waiter.deadline_ms, std::move(waiter));
}

std::vector<Waiter> WaiterSet::TakeFor(const IntentId& id) {
  std::vector<Waiter> out;
  auto [first, last] = by_intent_.equal_range(id);
  for (auto it = first; it != last; ++it) {
    auto [dfirst, dlast] = by_deadline_.equal_range(it->second);
    for (auto d = dfirst; d != dlast;) {
      if (d->second.id == id) {
        out.push_back(std::move(d->second));
        d = by_deadline_.erase(d);
      } else {
        ++d;
      }
    }
  }
  by_intent_.erase(first, last);
  return out;
}

void WaiterSet::Remove(const Waiter& w) {
  auto [first, last] = by_intent_.equal_range(w.id);
  for (auto it = first; it != last; ++it) {
    if (it->second != w.deadline_ms) continue;
    auto [dfirst, dlast] = by_deadline_.equal_range(w.deadline_ms);
    for (auto d = dfirst; d != dlast; ++d) {
      if (d->second.id == w.id && d->second.routing_id == w.routing_id && d->second.rid == w.rid) {
        by_deadline_.erase(d);
        by_intent_.erase(it);
        return;
      }
    }
  }
}

std::vector<Waiter> WaiterSet::TakeExpired(int64_t now_ms) {
  std::vector<Waiter> out;
  while (!by_deadline_.empty() && by_deadline_.begin()->first <= now_ms) {
    Waiter w = std::move(by_deadline_.begin()->second);
    by_deadline_.erase(by_deadline_.begin());
    auto [first, last] = by_intent_.equal_range(w.id);
    for (auto it = first; it != last; ++it) {
      if (it->second == w.deadline_ms) {
        by_intent_.erase(it);
        break;
      }
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::optional<int64_t> WaiterSet::NextDeadline() const {
  if (by_deadline_.empty()) return std::nullopt;
  return by_deadline_.begin()->first;
}

}  // namespace handoff::node
