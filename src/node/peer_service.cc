#include "node/peer_service.h"

#include <spdlog/spdlog.h>

#include "wire/agent_protocol.h"

namespace handoff::node {
namespace {

std::string InKey(const std::string& peer) { return "in/" + peer; }

// Failures of the store mean "try the batch again"; anything else is about the message.
bool IsStorageFailure(const Status& s) {
  return s.IsIOError() || s.IsResourceExhausted() || s.IsCorruption() || s.IsUnavailable();
}

}  // namespace

Result<uint64_t> PeerService::Applied(const Txn& txn, const std::string& peer) const {
  return store_.GetLinkCounter(txn, InKey(peer));
}

Result<uint64_t> PeerService::Apply(Txn& txn, Batch& batch, const wire::PeerMessage& msg) {
  HANDOFF_ASSIGN_OR_RETURN(uint64_t applied, Applied(txn, msg.from));
  if (msg.seq != applied + 1) return applied;  // a retransmission, or one ahead of a lost one
  Status s = Dispatch(txn, batch, msg);
  if (!s.ok()) {
    if (IsStorageFailure(s)) return s;
    spdlog::error("{} #{} from node {} cannot be applied and is skipped: {}", msg.kind, msg.seq,
                  msg.from, s.ToString());
  }
  HANDOFF_RETURN_IF_ERROR(store_.SetLinkCounter(txn, InKey(msg.from), msg.seq));
  return msg.seq;
}

Status PeerService::Dispatch(Txn& txn, Batch& batch, const wire::PeerMessage& msg) {
  HANDOFF_ASSIGN_OR_RETURN(MapReader body, MapReader::From(*msg.body, "body"));
  if (msg.kind == wire::peer_kind::kIntent) {
    std::optional<MapReader> intent;
    HANDOFF_RETURN_IF_ERROR(body.OptMap("intent", &intent));
    if (!intent) return Status::InvalidArgument("intent message without an intent");
    IntentRecord incoming;
    HANDOFF_RETURN_IF_ERROR(ReadIntentFields(*intent, &incoming));
    const msgpack::object* payload = intent->Find("payload");
    const msgpack::object* checkpoint = intent->Find("checkpoint");
    if (payload == nullptr || payload->type != msgpack::type::MAP) {
      return Status::InvalidArgument("intent message without a payload map");
    }
    Status accepted = engine_
                          .AcceptRemoteIntent(txn, batch, msg.from, incoming, Pack(*payload),
                                              checkpoint ? Pack(*checkpoint) : std::string())
                          .status();
    if (accepted.ok() || IsStorageFailure(accepted)) return accepted;
    // Valid enough to name, but not acceptable here: its origin must not wait for it forever.
    return engine_.RejectRemoteIntent(txn, batch, msg.from, incoming.id, accepted);
  }
  if (msg.kind == wire::peer_kind::kUpdate) {
    HANDOFF_ASSIGN_OR_RETURN(wire::RemoteUpdate update, wire::ReadRemoteUpdate(*msg.body));
    return engine_.ApplyRemoteUpdate(txn, batch, msg.from, update);
  }
  // control
  std::string id, action, actor, reason, outcome;
  HANDOFF_RETURN_IF_ERROR(body.String("intent_id", &id));
  HANDOFF_RETURN_IF_ERROR(body.String("action", &action));
  HANDOFF_RETURN_IF_ERROR(body.OptString("actor", &actor));
  HANDOFF_RETURN_IF_ERROR(body.OptString("reason", &reason));
  HANDOFF_RETURN_IF_ERROR(body.OptString("outcome", &outcome));
  HANDOFF_ASSIGN_OR_RETURN(IntentId intent_id, IntentId::Parse(id));
  return engine_.ApplyRemoteControl(txn, batch, msg.from, intent_id, action, actor, reason,
                                    outcome);
}

}  // namespace handoff::node
