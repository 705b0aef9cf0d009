// WaiterSet: `wait` requests parked until their intent ends or their time runs out.
//
// In memory only: a client whose daemon restarts repeats its wait (the client library does
// this), so nothing durable is lost with them.
//
// Thread safety: none; owned by the loop thread.

#ifndef HANDOFF_NODE_WAITERS_H_
#define HANDOFF_NODE_WAITERS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/intent_id.h"
#include "base/records.h"

namespace handoff::node {

struct Waiter {
  IntentId id;
  std::string routing_id;
  uint64_t rid = 0;
  int64_t deadline_ms = 0;
  Blobs blobs = Blobs::kAll;  // what the answer carries besides the record
  bool batch = false;         // the connection reads batches (its request said version 2)
};

class WaiterSet {
 public:
  void Add(Waiter waiter);
  // Removes and returns everyone waiting on `id`.
  std::vector<Waiter> TakeFor(const IntentId& id);
  // Removes the waiter `w` names (intent, connection and rid), if it is still waiting.
  void Remove(const Waiter& w);
  // Removes and returns the waiters whose deadline is at or before `now_ms`.
  std::vector<Waiter> TakeExpired(int64_t now_ms);
  std::optional<int64_t> NextDeadline() const;
  size_t size() const { return by_deadline_.size(); }

 private:
  // deadline -> waiter; a multimap keeps equal deadlines apart.
  using ByDeadline = std::multimap<int64_t, Waiter>;
  ByDeadline by_deadline_;
  // intent -> its waiters' entries in by_deadline_ (multimap iterators stay valid until their
  // entry is erased): many waiters share a deadline millisecond, and finding one among them
  // by deadline cost a scan of them all.
  std::multimap<IntentId, ByDeadline::iterator> by_intent_;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_WAITERS_H_
