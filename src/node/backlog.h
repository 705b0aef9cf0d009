// Backlog: what the node has for an agent connection that ZeroMQ would not take yet, bounded
// in bytes per connection and for the whole daemon.
//
// ZeroMQ queues at most a number of messages per connection (the agent socket's send high-water
// mark), whatever their size. Past it a send reports the queue full, and the message waits here,
// in order, with everything after it for the same connection, until the loop flushes it. A
// connection whose backlog is over its budget (or any connection with a backlog while the
// daemon's total is over the total budget) is one that does not read what it asked for: the
// loop stops serving its requests until it catches up, so memory stays bounded however many
// `list` requests it sends without reading a reply. Everyone else is unaffected.
//
// Thread safety: the loop thread's.

#ifndef HANDOFF_NODE_BACKLOG_H_
#define HANDOFF_NODE_BACKLOG_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/intent_id.h"

namespace handoff::node {

// A delivery push's intent and attempt.
struct Delivery {
  IntentId id;
  uint32_t attempt = 0;
};

// A message for an agent connection: a reply, an error, a delivery push, or a batch of them.
struct Outgoing {
  std::string routing_id;
  std::string frame;
  std::vector<Delivery> deliveries;  // the delivery pushes it carries
  bool batch = false;                // the connection reads batches: it may join one
};

class Backlog {
 public:
  // What a send attempt did with a message.
  enum class Sent {
    kTaken,  // ZeroMQ has it (or it was dealt with: the connection is gone)
    kFull,   // ZeroMQ's queue for the connection is full: try again later
  };
  using SendFn = std::function<Sent(const Outgoing&)>;

  Backlog(uint64_t connection_budget, uint64_t total_budget)
      : connection_budget_(connection_budget), total_budget_(total_budget) {}

  // Sends `m` unless the connection already has a backlog (order is kept); keeps it if ZeroMQ
  // will not take it now.
  void Send(Outgoing m, const SendFn& send);
  // Sends what waits, oldest first per connection, until each connection's queue is full.
  void Flush(const SendFn& send);

  // Replies a turn made for a connection but holds until its batch is durable count against
  // the connection's budget from the moment they are made: Hold when one is made, Unhold when
  // it is sent or dropped.
  void Hold(const std::string& routing_id, uint64_t bytes);
  void Unhold(const std::string& routing_id, uint64_t bytes);

  // True when nothing waits in the backlog (held replies aside).
  bool empty() const { return queues_.empty(); }
  // Queued and held, for one connection and for all.
  uint64_t bytes(const std::string& routing_id) const;
  uint64_t total_bytes() const { return total_bytes_; }
  // True when the connection's requests should wait: it does not read what it asked for.
  bool Over(const std::string& routing_id) const;
  uint64_t connection_budget() const { return connection_budget_; }
  uint64_t total_budget() const { return total_budget_; }

 private:
  struct Queue {
    std::deque<Outgoing> messages;
    uint64_t bytes = 0;
  };
  // Sends from the front of `q` until it is empty or full; true if it is empty.
  bool Drain(Queue& q, const SendFn& send);

  const uint64_t connection_budget_;
  const uint64_t total_budget_;
  std::unordered_map<std::string, Queue> queues_;   // only connections with a backlog
  std::unordered_map<std::string, uint64_t> held_;  // only connections with held replies
  uint64_t total_bytes_ = 0;                        // queued and held
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_BACKLOG_H_
