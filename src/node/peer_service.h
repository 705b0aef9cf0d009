// PeerService: applies the data messages peers send, in link order, exactly once.
//
// Each direction of each link numbers its data messages 1, 2, 3, ... The receiver keeps the
// last seq it applied per peer ("in/<peer>" in the links table), updated in the same
// transaction as the apply. A message at or below it is a retransmission and is skipped; one
// beyond the next is out of order (an earlier one was lost) and is dropped, to be sent again.
// Either way the reply is a cumulative ack of what is applied, sent once the batch commits.
//
// A message that is well formed but cannot be applied (an unknown intent, a bad address) is
// logged and counted as applied, so one bad message cannot stall a link forever; a storage
// failure fails the whole batch instead, and the peer sends it again.
//
// Thread safety: none; the loop thread only.

#ifndef HANDOFF_NODE_PEER_SERVICE_H_
#define HANDOFF_NODE_PEER_SERVICE_H_

#include <cstdint>
#include <string>

#include "node/engine.h"
#include "storage/store.h"
#include "wire/peer_protocol.h"

namespace handoff::node {

class PeerService {
 public:
  // `engine` and `store` must outlive the service.
  PeerService(Engine& engine, storage::Store& store) : engine_(engine), store_(store) {}

  // Applies `msg` (a data message) if it is the next on its link. Returns the seq applied on
  // that link afterwards, which is what to acknowledge.
  Result<uint64_t> Apply(Txn& txn, Batch& batch, const wire::PeerMessage& msg);
  // The last seq applied from `peer`.
  Result<uint64_t> Applied(const Txn& txn, const std::string& peer) const;

 private:
  Status Dispatch(Txn& txn, Batch& batch, const wire::PeerMessage& msg);

  Engine& engine_;
  storage::Store& store_;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_PEER_SERVICE_H_
