// PeerService: applies the data messages peers send, in link order, exactly once, and is where
// a peer's message becomes trusted.
//
// Each direction of each link numbers its data messages 1, 2, 3, ... The receiver keeps the
// last seq it applied per peer ("in/<peer>" in the links table), updated in the same
// transaction as the apply. A message at or below it is a retransmission and is skipped; one
// beyond the next is out of order (an earlier one was lost) and is dropped, to be sent again.
// Either way the reply is a cumulative ack of what is applied, sent once the batch commits.
//
// Before anything is written, a message is validated as a local request would be (limits.h)
// and authorized: peer P may forward intents only for addresses this node hosts, with itself as
// their origin; send updates only for intents this node forwarded to P; send controls only for
// intents P forwarded here. A forwarded intent that fails is refused back to P (its origin ends
// it FAILED with rejected_by_node, naming the field); anything else that fails is dropped. Both
// are logged with the peer and intent id, counted per peer, and counted as applied, so one bad
// message cannot stall a link; a storage failure fails the whole batch instead, and the peer
// sends it again.
//
// Thread safety: none; the loop thread only.

#ifndef HANDOFF_NODE_PEER_SERVICE_H_
#define HANDOFF_NODE_PEER_SERVICE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "node/engine.h"
#include "storage/store.h"
#include "wire/peer_protocol.h"

namespace handoff::node {

// Most events one update may carry.
inline constexpr size_t kMaxUpdateEvents = 4096;

class PeerService {
 public:
  // `engine` and `store` must outlive the service.
  PeerService(Engine& engine, storage::Store& store) : engine_(engine), store_(store) {}

  // Applies `msg` (a data message) if it is the next on its link. Returns the seq applied on
  // that link afterwards, which is what to acknowledge.
  Result<uint64_t> Apply(Txn& txn, Batch& batch, const wire::PeerMessage& msg);
  // Applies each of `messages` (data messages, in the order received) as Apply does, reading
  // each sending peer's inbound counter once and writing it once for the lot. Sets
  // (*acks)[peer] to the seq applied on each sender's link afterwards.
  Status ApplyAll(Txn& txn, Batch& batch, const std::vector<wire::PeerMessage>& messages,
                  std::map<std::string, uint64_t>* acks);
  // The last seq applied from `peer`.
  Result<uint64_t> Applied(const Txn& txn, const std::string& peer) const;
  // Messages from `peer` refused as invalid or not its to send.
  uint64_t refused(const std::string& peer) const {
    auto it = refused_.find(peer);
    return it == refused_.end() ? 0 : it->second;
  }

  // The checks a forwarded intent from `peer` must pass before it is stored (exposed for tests).
  Status CheckIntent(const std::string& peer, const IntentRecord& in, std::string_view payload,
                     std::string_view checkpoint) const;
  // The checks an update from `peer` must pass before the Engine looks at it.
  Status CheckUpdate(const std::string& peer, const wire::RemoteUpdate& u) const;

 private:
  // Applies `msg` if it is the next after `*applied` (moving *applied to it: true), else
  // nothing (false). The caller stores the counter.
  Result<bool> ApplyNext(Txn& txn, Batch& batch, const wire::PeerMessage& msg, uint64_t* applied);
  Status Dispatch(Txn& txn, Batch& batch, const wire::PeerMessage& msg);
  // Logs (bounded) and counts a refused message.
  void Refused(const wire::PeerMessage& msg, const Status& why);

  Engine& engine_;
  storage::Store& store_;
  std::map<std::string, uint64_t> refused_;
  int64_t last_refusal_log_ms_ = 0;
  uint64_t unlogged_refusals_ = 0;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_PEER_SERVICE_H_
