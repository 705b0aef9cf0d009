#include "node/lease_table.h"

namespace handoff::node {

void LeaseTable::Arm(const IntentId& id, uint32_t attempt, int64_t expires_at_ms) {
  auto [it, inserted] = by_id_.try_emplace(id, Lease{attempt, expires_at_ms});
  if (!inserted) {
    by_expiry_.erase({it->second.expires_at_ms, id});
    it->second = Lease{attempt, expires_at_ms};
  }
  by_expiry_.insert({expires_at_ms, id});
}

void LeaseTable::Disarm(const IntentId& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  by_expiry_.erase({it->second.expires_at_ms, id});
  by_id_.erase(it);
}

void LeaseTable::ExpireNow(const IntentId& id) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) Arm(id, it->second.attempt, INT64_MIN);
}

std::vector<LeaseTable::Expired> LeaseTable::TakeExpired(int64_t now_ms, size_t max) {
  std::vector<Expired> out;
  while (!by_expiry_.empty() && out.size() < max && by_expiry_.begin()->first <= now_ms) {
    IntentId id = by_expiry_.begin()->second;
    by_expiry_.erase(by_expiry_.begin());
    auto it = by_id_.find(id);
    out.push_back({id, it->second.attempt});
    by_id_.erase(it);
  }
  return out;
}

std::optional<int64_t> LeaseTable::NextExpiry() const {
  if (by_expiry_.empty()) return std::nullopt;
  return by_expiry_.begin()->first;
}

}  // namespace handoff::node
