// LeaseTable: in-memory expiry times of the leases agents hold.
//
// Leases are not persisted: which intents are leased, and at which delivery attempt, is in the
// intent records; the expiry instant is kept here and re-armed to now + lease on start-up, so a
// daemon restart (or a clock jump) gives live agents a full lease to reconnect and heartbeat
// instead of redelivering everything at once. Entries are hints: whoever acts on an expired
// entry checks the stored record (status and attempt) first.
//
// Thread safety: none; owned by the loop thread.

#ifndef HANDOFF_NODE_LEASE_TABLE_H_
#define HANDOFF_NODE_LEASE_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/intent_id.h"

namespace handoff::node {

class LeaseTable {
 public:
  struct Expired {
    IntentId id;
    uint32_t attempt;
  };

  // Sets (or moves) the expiry of `id`'s lease for delivery `attempt`.
  void Arm(const IntentId& id, uint32_t attempt, int64_t expires_at_ms);
  void Disarm(const IntentId& id);
  // Moves the expiry of `id`'s lease, if any, to the earliest possible instant.
  void ExpireNow(const IntentId& id);
  // Removes and returns up to `max` leases that expired at or before `now_ms`, earliest first.
  std::vector<Expired> TakeExpired(int64_t now_ms, size_t max);
  std::optional<int64_t> NextExpiry() const;
  size_t size() const { return by_id_.size(); }

 private:
  struct Lease {
    uint32_t attempt;
    int64_t expires_at_ms;
  };
  std::map<IntentId, Lease> by_id_;
  std::set<std::pair<int64_t, IntentId>> by_expiry_;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_LEASE_TABLE_H_
