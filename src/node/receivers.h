// ReceiverSet: the agent connections that asked to receive intents for an address, and the
// credit each has left.
//
// A connection registers with `receive {address, credit}`, once per address it serves; credit
// is the number of intents of that address it may hold at once (delivered and not yet
// completed, failed or expired). Registrations live in memory only: clients repeat `receive`
// periodically, which re-registers them after a daemon restart. A connection that vanished is
// dropped, with all its registrations, the first time a push to it fails.
//
// Thread safety: none; owned by the loop thread.

#ifndef HANDOFF_NODE_RECEIVERS_H_
#define HANDOFF_NODE_RECEIVERS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/intent_id.h"

namespace handoff::node {

struct Receiver {
  std::string routing_id;
  std::string address;
  uint32_t credit = 0;      // most intents held at once
  std::set<IntentId> held;  // intents delivered to it and still leased
  bool has_room() const { return held.size() < credit; }
};

// Most addresses one connection may receive for.
inline constexpr size_t kMaxAddressesPerConnection = 1024;

class ReceiverSet {
 public:
  using Key = std::pair<std::string, std::string>;  // (routing id, address)

  // Adds or updates the registration of `routing_id` for `address`. Intents it already holds
  // stay held. False, changing nothing, if the connection already receives for
  // kMaxAddressesPerConnection other addresses.
  bool Register(const std::string& routing_id, const std::string& address, uint32_t credit);
  // Drops a connection and all its registrations; returns the intents they held (their leases
  // should end now).
  std::vector<IntentId> Remove(const std::string& routing_id);
  // Records that `id` was pushed to the registration of `routing_id` for `address`.
  void Assign(const std::string& routing_id, const std::string& address, const IntentId& id);
  // `id` is no longer held by whoever held it.
  void Release(const IntentId& id);

  // Receivers with room, in a rotating order so that connections sharing an address share
  // its work.
  std::vector<Receiver*> WithRoom();
  size_t size() const { return receivers_.size(); }
  const std::map<Key, Receiver>& all() const { return receivers_; }

 private:
  std::map<Key, Receiver> receivers_;
  std::unordered_map<IntentId, Key, IntentIdHash> holder_;
  size_t rotation_ = 0;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_RECEIVERS_H_
