// The sending half of Node's agent socket: every message to an agent connection goes through
// SendAll, in order per connection, joined into batches for connections that read them
// (Coalesce), and kept in the Backlog while ZeroMQ's queue for a connection is full; requests
// refused before they reach the engine (Reject), and connections that do not read what they
// asked for (Backlogged).

#include <spdlog/spdlog.h>

#include <unordered_map>

#include "base/names.h"
#include "base/units.h"
#include "node/node.h"

namespace handoff::node {
namespace {

// Refusals and backlogged connections are logged at most this often.
constexpr int64_t kRejectLogPeriodMs = 5000;

}  // namespace

void Node::Reject(const std::string& routing_id, uint64_t rid, const Status& status) {
  ++rejected_;
  ++stats_.rejected;
  const int64_t now = options_.clock->NowMs();
  spdlog::debug("rejected a request: {}", status.ToString());
  if (now - last_reject_log_ms_ >= kRejectLogPeriodMs) {
    spdlog::warn("rejected {} malformed or invalid request(s) from agent connections; latest: {}",
                 rejected_, status.ToString());
    rejected_ = 0;
    last_reject_log_ms_ = now;
  }
  SendAll({Outgoing{routing_id, wire::EncodeErrorReply(rid, status), {}, false}});
}

void Node::SendAll(std::vector<Outgoing> messages) {
  for (Outgoing& m : Coalesce(std::move(messages))) {
    backlog_.Send(std::move(m), [this](const Outgoing& out) { return SendToAgent(out); });
  }
  stats_.backlog_bytes = backlog_.total_bytes();
}

std::vector<Outgoing> Node::Coalesce(std::vector<Outgoing> messages) {
  if (messages.size() < 2) return messages;
  // Per connection, the messages of its open batch (indexes into `messages`), in order. A
  // message that may not join a batch closes the connection's open one, so that every
  // connection gets its messages in the order given.
  struct Group {
    std::vector<size_t> items;  // indexes into `messages`
    size_t bytes = 0;
  };
  std::vector<Group> groups;                          // what each outgoing frame carries, in order
  std::unordered_map<std::string_view, size_t> open;  // connection -> its open group
  for (size_t i = 0; i < messages.size(); ++i) {
    const Outgoing& m = messages[i];
    auto it = open.find(m.routing_id);
    if (m.batch && it != open.end()) {
      Group& group = groups[it->second];
      if (group.items.size() < wire::kSendBatchItems &&
          group.bytes + m.frame.size() <= wire::kMaxBatchBytes) {
        group.items.push_back(i);
        group.bytes += m.frame.size();
        continue;
      }
    }
    groups.push_back({{i}, m.frame.size()});
    if (m.batch) {
      open[m.routing_id] = groups.size() - 1;
    } else if (it != open.end()) {
      open.erase(it);
    }
  }
  if (groups.size() == messages.size()) return messages;
  std::vector<Outgoing> out;
  out.reserve(groups.size());
  std::vector<std::string_view> frames;
  for (const Group& group : groups) {
    if (group.items.size() == 1) {
      out.push_back(std::move(messages[group.items[0]]));
      continue;
    }
    frames.clear();
    Outgoing batch{messages[group.items[0]].routing_id, {}, {}, true};
    for (size_t j : group.items) {
      frames.push_back(messages[j].frame);
      for (const Delivery& d : messages[j].deliveries) batch.deliveries.push_back(d);
    }
    batch.frame = wire::EncodeBatch(frames);
    out.push_back(std::move(batch));
  }
  return out;
}

void Node::Unhold(const std::vector<Outgoing>& replies) {
  for (const Outgoing& m : replies) backlog_.Unhold(m.routing_id, m.frame.size());
}

Backlog::Sent Node::SendToAgent(const Outgoing& m) {
  Status s = !net::StreamServer::Owns(m.routing_id) ? agents_->Send(m.routing_id, m.frame)
             : streams_                             ? streams_->Send(m.routing_id, m.frame)
                                                    : Status::Unavailable("no stream socket");
  if (s.ok()) return Backlog::Sent::kTaken;
  if (s.IsResourceExhausted()) return Backlog::Sent::kFull;
  if (s.IsUnavailable()) {
    // The connection is gone. A delivery that could not be pushed reached nobody: it goes
    // back to the queue uncounted. Whatever else the connection held was received, so those
    // leases end now rather than after a full lease.
    for (const Delivery& d : m.deliveries) {
      receivers_.Release(d.id);
      undelivered_.emplace_back(d.id, d.attempt);
    }
    for (const IntentId& id : receivers_.Remove(m.routing_id)) engine_->ExpireLeaseNow(id);
    spdlog::debug("agent connection vanished before a message to it could be sent");
  } else {
    spdlog::warn("dropped a message to an agent connection: {}", s.ToString());
  }
  return Backlog::Sent::kTaken;
}

bool Node::Backlogged(const std::string& routing_id) {
  if (!backlog_.Over(routing_id)) return false;
  ++backlogged_;
  ++stats_.backlog_dropped;
  const int64_t now = options_.clock->NowMs();
  if (now - last_backlog_log_ms_ >= kRejectLogPeriodMs) {
    spdlog::warn(
        "dropped {} request(s) from agent connection {}: it leaves {} of replies unread (limit "
        "{} per connection, {} for all: max_client_backlog, max_total_client_backlog); its "
        "requests are served again once it reads them",
        backlogged_, HexId(routing_id), FormatByteSize(backlog_.bytes(routing_id)),
        FormatByteSize(backlog_.connection_budget()), FormatByteSize(backlog_.total_budget()));
    backlogged_ = 0;
    last_backlog_log_ms_ = now;
  }
  return true;
}

}  // namespace handoff::node
