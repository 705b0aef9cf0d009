// ReceiverSet: the agent connections that asked to receive intents for an address, and the
// credit each has left.
//
// A connection registers with `receive {address, credit}`, once per address it serves; credit
// is the number of intents of that address it may hold at once (delivered and not yet
// completed, failed or expired). Registrations live in memory only: clients repeat `receive`
// periodically (every second), which re-registers them after a daemon restart. A connection
// that vanished is dropped, with all its registrations, the first time a push to it fails; one
// that merely goes silent (ZeroMQ does not tell a ROUTER that a peer left) is dropped by
// DropSilent once nothing was heard from it for the receiver timeout. Anything the connection
// sends counts as hearing from it, and so does a heartbeat or report on an intent it holds
// (agents send those on another connection while a handler runs).
//
// Thread safety: none; owned by the loop thread.

#ifndef HANDOFF_NODE_RECEIVERS_H_
#define HANDOFF_NODE_RECEIVERS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
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
  bool batch = false;       // it reads batches (its latest `receive` said version 2)
  bool has_room() const { return held.size() < credit; }
};

// Most addresses one connection may receive for.
inline constexpr size_t kMaxAddressesPerConnection = 1024;

class ReceiverSet {
 public:
  using Key = std::pair<std::string, std::string>;  // (routing id, address)
  // Orders keys, and finds one by a pair of views without building its strings.
  struct KeyLess {
    using is_transparent = void;
    using View = std::pair<std::string_view, std::string_view>;
    static View AsView(const Key& k) { return {k.first, k.second}; }
    static View AsView(const View& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return AsView(a) < AsView(b);
    }
  };
  using Map = std::map<Key, Receiver, KeyLess>;

  // Adds or updates the registration of `routing_id` for `address`. Intents it already holds
  // stay held. False, changing nothing, if the connection already receives for
  // kMaxAddressesPerConnection other addresses.
  bool Register(const std::string& routing_id, const std::string& address, uint32_t credit,
                int64_t now_ms, bool batch = false);
  // The connection said something at `now_ms` (no-op for one that receives nothing).
  void Heard(const std::string& routing_id, int64_t now_ms);
  // When the connection was last heard from (0: it receives nothing). Kept per connection, so
  // hearing from one that receives for many addresses costs one update.
  int64_t LastHeard(const std::string& routing_id) const {
    auto h = heard_.find(routing_id);
    return h == heard_.end() ? 0 : h->second;
  }
  // Someone reported on `id` (heartbeat, checkpoint, outcome) at `now_ms`: its holder is alive.
  void HeardAbout(const IntentId& id, int64_t now_ms);
  // Drops every connection not heard from since `before_ms`, with its registrations. What they
  // held is released here but keeps its lease: an agent still working sends heartbeats, and a
  // dead one's intents go back when their leases run out. Returns the connections dropped.
  size_t DropSilent(int64_t before_ms);
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
  const Map& all() const { return receivers_; }

 private:
  Map receivers_;
  // Who holds each intent pushed and not yet released: a map node's address, stable until
  // Remove erases the receiver (and these entries with it).
  std::unordered_map<IntentId, Receiver*, IntentIdHash> holder_;
  std::unordered_map<std::string, int64_t> heard_;  // per connection with registrations
  size_t rotation_ = 0;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_RECEIVERS_H_
