#include "node/peer_service.h"

#include <spdlog/spdlog.h>

#include "base/names.h"
#include "node/limits.h"
#include "wire/agent_protocol.h"

namespace handoff::node {
namespace {

constexpr int64_t kRefusalLogPeriodMs = 10'000;
constexpr uint64_t kRefusalsLoggedEachPeriod = 10;

// Failures of the store mean "try the batch again"; anything else is about the message.
bool IsStorageFailure(const Status& s) {
  return s.IsIOError() || s.IsResourceExhausted() || s.IsCorruption() || s.IsUnavailable();
}

// Prefixes a check's message with the field it is about.
Status Field(std::string_view field, const Status& s) {
  if (s.ok()) return s;
  return Status(s.code(), std::string(field) + ": " + s.message());
}

// The intent a data message is about, for log lines ("?" if it names none readably).
std::string IntentIdOf(const wire::PeerMessage& msg) {
  const std::optional<IntentId> id = wire::IntentOf(msg);
  return id ? id->ToString() : "?";
}

// A JSON value a peer sent (the field `field` of `msg`) as it is stored: its bytes as they came
// when they are already as Pack writes them (PackedJsonMap), else checked and packed.
Status StoredValue(const wire::PeerMessage& msg, std::string_view field,
                   const msgpack::object& value, std::string* out) {
  if (std::optional<std::string_view> packed = PackedJsonMap(msg.handle.bytes(), value)) {
    out->assign(*packed);
    return Status::OK();
  }
  HANDOFF_ASSIGN_OR_RETURN(*out, StoredJson(field, value, std::nullopt));  // the long way
  return Status::OK();
}

}  // namespace

Result<uint64_t> PeerService::Applied(const Txn& txn, const std::string& peer) const {
  return store_.GetLinkCounter(txn, storage::Store::InLinkCounter(peer));
}

Result<uint64_t> PeerService::Apply(Txn& txn, Batch& batch, const wire::PeerMessage& msg) {
  HANDOFF_ASSIGN_OR_RETURN(uint64_t applied, Applied(txn, msg.from));
  HANDOFF_ASSIGN_OR_RETURN(const bool taken, ApplyNext(txn, batch, msg, &applied));
  if (taken)
    HANDOFF_RETURN_IF_ERROR(
        store_.SetLinkCounter(txn, storage::Store::InLinkCounter(msg.from), applied));
  return applied;
}

Status PeerService::ApplyAll(Txn& txn, Batch& batch, const std::vector<wire::PeerMessage>& messages,
                             std::map<std::string, uint64_t>* acks) {
  std::map<std::string, uint64_t> stored;  // each sender's counter as the turn found it
  for (const wire::PeerMessage& msg : messages) {
    if (stored.count(msg.from) == 0) {
      HANDOFF_ASSIGN_OR_RETURN(uint64_t applied, Applied(txn, msg.from));
      stored[msg.from] = applied;
      (*acks)[msg.from] = applied;
    }
    HANDOFF_RETURN_IF_ERROR(ApplyNext(txn, batch, msg, &(*acks)[msg.from]).status());
  }
  for (const auto& [peer, was] : stored) {
    const uint64_t applied = acks->at(peer);
    if (applied != was)
      HANDOFF_RETURN_IF_ERROR(
          store_.SetLinkCounter(txn, storage::Store::InLinkCounter(peer), applied));
  }
  return Status::OK();
}

Result<bool> PeerService::ApplyNext(Txn& txn, Batch& batch, const wire::PeerMessage& msg,
                                    uint64_t* applied) {
  if (msg.seq != *applied + 1) return false;  // a retransmission, or one ahead of a lost one
  Status s = Dispatch(txn, batch, msg);
  if (!s.ok()) {
    if (IsStorageFailure(s)) return s;
    Refused(msg, s);  // refused, and passed over: the link goes on
  }
  *applied = msg.seq;
  return true;
}

void PeerService::Refused(const wire::PeerMessage& msg, const Status& why) {
  ++refused_[msg.from];
  const int64_t now = engine_.clock().NowMs();
  if (now - last_refusal_log_ms_ >= kRefusalLogPeriodMs) {
    if (unlogged_refusals_ > 0) {
      spdlog::warn("{} more refused peer message(s) were not logged", unlogged_refusals_);
    }
    last_refusal_log_ms_ = now;
    unlogged_refusals_ = 0;
  }
  if (unlogged_refusals_ >= kRefusalsLoggedEachPeriod) {
    ++unlogged_refusals_;
    return;
  }
  if (++unlogged_refusals_ == kRefusalsLoggedEachPeriod) {
    spdlog::warn("refusing many messages from peers; logging the first {} every {} s",
                 kRefusalsLoggedEachPeriod, kRefusalLogPeriodMs / 1000);
  }
  spdlog::error("refused {} #{} from node {} (intent {}): {}; nothing stored changed", msg.kind,
                msg.seq, msg.from, IntentIdOf(msg), why.message());
}

Status PeerService::CheckIntent(const std::string& peer, const IntentRecord& in,
                                std::string_view payload, std::string_view checkpoint) const {
  if (in.id.IsZero()) return Status::InvalidArgument("intent_id: must not be all zeros");
  if (!in.origin_node.empty()) {
    HANDOFF_RETURN_IF_ERROR(Field("origin_node", ValidateNodeName(in.origin_node)));
    if (in.origin_node != peer) {
      return Status::InvalidArgument("origin_node: '" + in.origin_node +
                                     "' is not the node that forwarded it ('" + peer +
                                     "'); a node forwards only its own intents");
    }
  }
  HANDOFF_RETURN_IF_ERROR(Field("intent_type", ValidateIntentType(in.intent_type)));
  HANDOFF_RETURN_IF_ERROR(Field("to_agent", ValidateAgentAddress(in.to_agent)));
  HANDOFF_RETURN_IF_ERROR(Field("from_agent", ValidateAgentAddress(in.from_agent)));
  if (!in.reply_to.empty()) {
    HANDOFF_RETURN_IF_ERROR(Field("reply_to", ValidateAgentAddress(in.reply_to)));
  }
  const std::string host = engine_.NodeFor(in.to_agent);
  if (!host.empty()) {
    return Status::InvalidArgument("to_agent: " + in.to_agent + " is not hosted by node " +
                                   engine_.options().node_name + " (its routes give it to '" +
                                   host + "')");
  }
  HANDOFF_RETURN_IF_ERROR(CheckIdField("correlation_id", in.correlation_id));
  HANDOFF_RETURN_IF_ERROR(CheckIdField("idempotency_key", in.idempotency_key));
  if (!in.parent_id.empty()) {
    HANDOFF_RETURN_IF_ERROR(Field("parent_id", IntentId::Parse(in.parent_id).status()));
  }
  if (!in.replay_of.empty()) {
    HANDOFF_RETURN_IF_ERROR(Field("replay_of", IntentId::Parse(in.replay_of).status()));
  }
  if (in.lease_ms != 0) HANDOFF_RETURN_IF_ERROR(CheckLeaseMs(in.lease_ms));
  HANDOFF_RETURN_IF_ERROR(CheckTimestamp("deadline", in.deadline_ms));
  HANDOFF_RETURN_IF_ERROR(CheckTimestamp("created_at", in.created_at_ms));
  HANDOFF_RETURN_IF_ERROR(
      CheckRetryPolicy(in.max_attempts, in.retry_initial_ms, in.retry_multiplier, in.retry_max_ms));
  if (in.approval) HANDOFF_RETURN_IF_ERROR(CheckApproval(*in.approval));
  HANDOFF_RETURN_IF_ERROR(Field("payload", engine_.CheckSize("payload", payload.size())));
  return Field("checkpoint", engine_.CheckSize("checkpoint", checkpoint.size()));
}

Status PeerService::CheckUpdate(const std::string& peer, const wire::RemoteUpdate& u) const {
  if (u.remote_seq == 0) return Status::InvalidArgument("remote_seq: must be at least 1");
  if (u.events.size() > kMaxUpdateEvents) {
    return Status::InvalidArgument("events: more than " + std::to_string(kMaxUpdateEvents));
  }
  for (const EventRecord& e : u.events) {
    if (e.event_type.size() > kMaxEventTypeBytes || e.event_type.rfind("intent.", 0) != 0) {
      return Status::InvalidArgument(
          "events: an event type must be intent.<name>, at most 64 "
          "bytes");
    }
    if (e.node != peer) {
      return Status::InvalidArgument("events: an event recorded on node " + Quoted(e.node) +
                                     " sent by node '" + peer +
                                     "'; a node reports only its own events");
    }
    HANDOFF_RETURN_IF_ERROR(Field("events", CheckIdField("actor", e.actor)));
    HANDOFF_RETURN_IF_ERROR(Field("events", CheckTimestamp("at", e.at_ms)));
    if (e.details.size() > kMaxEventDetailsBytes) {
      return Status::InvalidArgument("events: details over 64 KiB");
    }
  }
  const std::string& w = u.waiting_reason;
  if (!w.empty() && w != "HUMAN" && w != "AGENT" && w != "TOOL" && w != "TIME") {
    return Status::InvalidArgument("waiting_reason: must be HUMAN, AGENT, TOOL or TIME");
  }
  if (u.error) HANDOFF_RETURN_IF_ERROR(CheckErrorInfo("error", *u.error));
  if (u.last_error) HANDOFF_RETURN_IF_ERROR(CheckErrorInfo("last_error", *u.last_error));
  if (u.approval) HANDOFF_RETURN_IF_ERROR(CheckApproval(*u.approval));
  HANDOFF_RETURN_IF_ERROR(engine_.CheckSize("checkpoint", u.checkpoint.size()));
  return engine_.CheckSize("result", u.result.size());
}

Status PeerService::Dispatch(Txn& txn, Batch& batch, const wire::PeerMessage& msg) {
  if (msg.kind == wire::peer_kind::kUpdate) {  // its body a map, or an array (compact)
    HANDOFF_ASSIGN_OR_RETURN(wire::RemoteUpdate update,
                             wire::ReadRemoteUpdate(*msg.body, msg.from));
    HANDOFF_RETURN_IF_ERROR(CheckUpdate(msg.from, update));
    return engine_.ApplyRemoteUpdate(txn, batch, msg.from, update);
  }
  if (msg.kind == wire::peer_kind::kIntent) {  // its body a map, or an array (compact)
    IntentRecord incoming;
    const msgpack::object *payload = nullptr, *checkpoint = nullptr;
    Status read = wire::ReadForwardedIntent(*msg.body, &incoming, &payload, &checkpoint);
    if (read.ok() && (payload == nullptr || payload->type != msgpack::type::MAP)) {
      read = Status::InvalidArgument("payload: not a map");
    }
    // Taken as they came when the origin encoded them as they are stored (it does), else
    // checked and packed.
    std::string payload_bytes, checkpoint_bytes;
    if (read.ok()) read = StoredValue(msg, "payload", *payload, &payload_bytes);
    if (read.ok() && checkpoint != nullptr && checkpoint->type != msgpack::type::NIL) {
      read = StoredValue(msg, "checkpoint", *checkpoint, &checkpoint_bytes);
    }
    Status checked =
        read.ok() ? CheckIntent(msg.from, incoming, payload_bytes, checkpoint_bytes) : read;
    if (checked.ok()) {
      checked =
          engine_
              .AcceptRemoteIntent(txn, batch, msg.from, incoming, payload_bytes, checkpoint_bytes)
              .status();
      if (checked.ok() || IsStorageFailure(checked)) return checked;
    }
    // Named well enough to answer: its origin must not wait for it forever.
    if (!incoming.id.IsZero()) {
      HANDOFF_RETURN_IF_ERROR(
          engine_.RejectRemoteIntent(txn, batch, msg.from, incoming.id, checked));
    }
    return checked;
  }
  HANDOFF_ASSIGN_OR_RETURN(MapReader body, MapReader::From(*msg.body, "body"));
  // control
  std::string id, action, actor, reason, outcome;
  HANDOFF_RETURN_IF_ERROR(body.String("action", &action));
  HANDOFF_RETURN_IF_ERROR(body.OptString("actor", &actor));
  HANDOFF_RETURN_IF_ERROR(body.OptString("reason", &reason));
  HANDOFF_RETURN_IF_ERROR(body.OptString("outcome", &outcome));
  if (action == "pause" || action == "resume") {
    // An operator on `from` paused an address this node hosts (its routes send it here).
    std::string address;
    HANDOFF_RETURN_IF_ERROR(body.String("address", &address));
    HANDOFF_RETURN_IF_ERROR(Field("address", ValidateAgentAddress(address)));
    HANDOFF_RETURN_IF_ERROR(CheckIdField("actor", actor));
    if (reason.size() > kMaxQuestionBytes) return Status::InvalidArgument("reason: over 4 KiB");
    if (!IsValidUtf8(actor) || !IsValidUtf8(reason)) {
      return Status::InvalidArgument("actor, reason: not UTF-8 text");
    }
    return engine_.ApplyRemotePause(txn, batch, msg.from, address, action == "pause", actor,
                                    reason);
  }
  HANDOFF_RETURN_IF_ERROR(body.String("intent_id", &id));
  HANDOFF_ASSIGN_OR_RETURN(IntentId intent_id, IntentId::Parse(id));
  if (action != "cancel" && action != "timeout" && action != "approve" && action != "reject") {
    return Status::InvalidArgument("action: unknown control action " + Quoted(action));
  }
  HANDOFF_RETURN_IF_ERROR(CheckIdField("actor", actor));
  if (reason.size() > kMaxQuestionBytes) return Status::InvalidArgument("reason: over 4 KiB");
  if (outcome.size() > kMaxOutcomeBytes) return Status::InvalidArgument("outcome: over 64 bytes");
  return engine_.ApplyRemoteControl(txn, batch, msg.from, intent_id, action, actor, reason,
                                    outcome);
}

}  // namespace handoff::node
