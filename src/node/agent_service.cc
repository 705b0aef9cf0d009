#include "node/agent_service.h"

#include <algorithm>
#include <array>
#include <map>
#include <utility>

#include "base/names.h"
#include "base/units.h"
#include "node/limits.h"

namespace handoff::node {
namespace {

using wire::ReplyBuilder;

Result<IntentId> ReadId(const MapReader& m) {
  std::string_view text;
  HANDOFF_RETURN_IF_ERROR(m.StringView("intent_id", &text));
  return IntentId::Parse(text);
}

Result<uint32_t> ReadAttempt(const MapReader& m) {
  uint64_t attempt = 0;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("attempt", &attempt));
  if (attempt > UINT32_MAX) return Status::InvalidArgument("field 'attempt' is too large");
  return static_cast<uint32_t>(attempt);
}

Result<uint64_t> ReadLimit(const MapReader& m, uint64_t fallback) {
  uint64_t limit = fallback;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("limit", &limit));
  if (limit == 0 || limit > kMaxListLimit) {
    return Status::InvalidArgument("field 'limit' must be between 1 and " +
                                   std::to_string(kMaxListLimit));
  }
  return limit;
}

// The JSON value `value`, the request's field `key`, as it is stored (StoredJson): the bytes the
// request carried when they are what Pack would write, as our clients and msgpack libraries
// send them (the decoder noted where they lie); else checked and packed.
Result<std::string> StoredField(const wire::Request& req, std::string_view key,
                                const msgpack::object& value) {
  return StoredJson(key, value, req.handle.FieldBytes(key));
}

// A status reply: the intent's id, status and attempt, without the blobs.
std::optional<std::string> BriefReply(uint64_t rid, const IntentRecord& r) {
  ReplyBuilder b(rid);
  b.w().Field("intent_id", r.id.ToText().view());
  b.w().Field("status", IntentStatusName(r.status));
  b.w().Field("delivery_attempt", r.delivery_attempt);
  b.w().Field("seq", r.seq);
  return b.Finish();
}

}  // namespace

AgentService::AgentService(Engine& engine, ReceiverSet& receivers, WaiterSet& waiters,
                           const NodeInfo& info, const NodeStats& stats, storage::Env& env)
    : engine_(engine),
      receivers_(receivers),
      waiters_(waiters),
      info_(info),
      stats_(stats),
      env_(env) {}

bool AgentService::MayWrite(std::string_view op) {
  return op == wire::op::kSend || op == wire::op::kCancel || op == wire::op::kAck ||
         op == wire::op::kHeartbeat || op == wire::op::kCheckpoint || op == wire::op::kComplete ||
         op == wire::op::kFail || op == wire::op::kReplay || op == wire::op::kPurge ||
         op == wire::op::kApprove || op == wire::op::kReject || op == wire::op::kRequestApproval ||
         op == wire::op::kPause || op == wire::op::kResume;
}

bool AgentService::IsPureRead(std::string_view op) {
  return op == wire::op::kGet || op == wire::op::kList || op == wire::op::kEvents ||
         op == wire::op::kAudit || op == wire::op::kStatus || op == wire::op::kHello ||
         op == wire::op::kAgents;
}

AgentService::Handler AgentService::Find(std::string_view op) {
  static const std::array<std::pair<std::string_view, Handler>, 23> kHandlers = {{
      {wire::op::kHello, &AgentService::OnHello},
      {wire::op::kSend, &AgentService::OnSend},
      {wire::op::kGet, &AgentService::OnGet},
      {wire::op::kEvents, &AgentService::OnEvents},
      {wire::op::kWait, &AgentService::OnWait},
      {wire::op::kList, &AgentService::OnList},
      {wire::op::kCancel, &AgentService::OnCancel},
      {wire::op::kReceive, &AgentService::OnReceive},
      {wire::op::kAck, &AgentService::OnAck},
      {wire::op::kHeartbeat, &AgentService::OnHeartbeat},
      {wire::op::kCheckpoint, &AgentService::OnCheckpoint},
      {wire::op::kComplete, &AgentService::OnComplete},
      {wire::op::kFail, &AgentService::OnFail},
      {wire::op::kStatus, &AgentService::OnStatus},
      {wire::op::kReplay, &AgentService::OnReplay},
      {wire::op::kPurge, &AgentService::OnPurge},
      {wire::op::kApprove, &AgentService::OnDecide},
      {wire::op::kReject, &AgentService::OnDecide},
      {wire::op::kRequestApproval, &AgentService::OnRequestApproval},
      {wire::op::kAudit, &AgentService::OnAudit},
      {wire::op::kAgents, &AgentService::OnAgents},
      {wire::op::kPause, &AgentService::OnPause},
      {wire::op::kResume, &AgentService::OnPause},
  }};
  for (const auto& [name, handler] : kHandlers) {
    if (name == op) return handler;
  }
  return nullptr;
}

std::optional<std::string> AgentService::Handle(Txn& txn, Batch& batch,
                                                const std::string& routing_id,
                                                const wire::Request& request) {
  Handler handler = Find(request.op);
  if (handler == nullptr) {
    return wire::EncodeErrorReply(
        request.rid,
        Status::InvalidArgument(
            "unknown operation '" + request.op.substr(0, 64) +
            "'; known: hello, send, get, events, wait, list, cancel, receive, ack, "
            "heartbeat, checkpoint, complete, fail, request_approval, approve, reject, replay, "
            "purge, audit, status, agents, pause, resume"));
  }
  if (MayWrite(request.op) && !txn.is_write()) {
    return wire::EncodeErrorReply(request.rid, Status::Unavailable("no write transaction"));
  }
  receivers_.Heard(routing_id, engine_.clock().NowMs());
  Reply reply = (this->*handler)(txn, batch, routing_id, request);
  if (!reply.ok()) return wire::EncodeErrorReply(request.rid, reply.status());
  return std::move(reply).value();
}

AgentService::Reply AgentService::IntentReply(const Txn& txn, uint64_t rid,
                                              const IntentRecord& record) {
  IntentView view;
  HANDOFF_RETURN_IF_ERROR(engine_.Get(txn, record.id, &view));
  ReplyBuilder b(rid);
  b.w().Key("intent");
  wire::WriteIntent(b.w(), view.record, view.payload, view.checkpoint, view.result);
  return std::optional<std::string>(b.Finish());
}

std::string AgentService::DeliveryPush(const DeliveredView& delivery) {
  MsgWriter w;
  w.BeginMap();
  w.Field("v", wire::kMessageVersion);
  w.Field("push", wire::kPushDeliver);
  w.Key("intent");
  wire::WriteIntent(w, delivery.record, delivery.payload, delivery.checkpoint, {});
  w.EndMap();
  return w.Release();
}

std::string AgentService::EncodeWaitReply(uint64_t rid, const IntentView& view) {
  return EncodeWaitReply(rid, view.record, view.payload, view.checkpoint, view.result);
}

std::string AgentService::EncodeWaitReply(uint64_t rid, const IntentRecord& record,
                                          std::string_view payload, std::string_view checkpoint,
                                          std::string_view result) {
  ReplyBuilder b(rid);
  b.w().Field("terminal", IsTerminal(record.status));
  b.w().Key("intent");
  wire::WriteIntent(b.w(), record, payload, checkpoint, result);
  return b.Finish();
}

std::string AgentService::WaitReply(const Txn& txn, const Waiter& waiter) {
  // Encoded straight from the record and blobs where they are kept: a wait's answer is the
  // one read of an intent on every round trip.
  auto peeked = engine_.Peek(txn, waiter.id, waiter.blobs);
  if (!peeked.ok()) return wire::EncodeErrorReply(waiter.rid, peeked.status());
  return EncodeWaitReply(waiter.rid, peeked->record(), peeked->payload, peeked->checkpoint,
                         peeked->result);
}

Status AgentService::CheckRoom(size_t payload_bytes) {
  // What a new intent may take by the time it has ended: its payload, record, events and
  // index entries, plus room for a result and the events still to come.
  // Once a send was refused, every send is until the room has grown back (set_send_budget):
  // a store at its limit does not flap between refusing sends and taking a small one.
  const uint64_t cost = payload_bytes + kIntentSpaceEstimate;
  if (!refusing_sends_ && cost <= send_budget_) {
    send_budget_ -= cost;
    refusing_sends_ = false;
    return Status::OK();
  }
  ++refused_sends_;
  refusing_sends_ = true;
  return Status::ResourceExhausted(
      "the store is full (" + FormatByteSize(stats_.space_in_use) + " of map_size " +
      FormatByteSize(info_.map_size) +
      " in use or set aside for intents already accepted): new sends are refused until ended "
      "intents are purged (retention, handoffctl purge) or map_size is raised; intents already "
      "accepted still complete");
}

AgentService::Reply AgentService::OnHello(Txn&, Batch&, const std::string&,
                                          const wire::Request& req) {
  ReplyBuilder b(req.rid);
  b.w().Field("node", info_.name);
  b.w().Field("protocol", wire::kAgentProtocolVersion);
  b.w().Field("version", HANDOFF_VERSION);
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnSend(Txn& txn, Batch& batch, const std::string& conn,
                                         const wire::Request& req) {
  MapReader m = req.body();
  // A send that is also a wait: its outcome is answered as a `wait` with this rid would be.
  uint64_t wait_rid = 0;
  uint64_t wait_timeout_ms = 30'000;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("wait_rid", &wait_rid));
  HANDOFF_RETURN_IF_ERROR(m.OptUint("wait_timeout_ms", &wait_timeout_ms));
  bool wait_payload = true;  // false: the sender has the payload; answer without it
  HANDOFF_RETURN_IF_ERROR(m.OptBool("wait_payload", &wait_payload));
  if (wait_rid != 0 && wait_rid == req.rid) {
    return Status::InvalidArgument(
        "wait_rid must differ from the send's rid: the wait's answer is a reply of its own");
  }
  wait_timeout_ms = std::min<uint64_t>(wait_timeout_ms, static_cast<uint64_t>(kMaxWaitMs));
  SendParams p;
  std::string id_text;
  HANDOFF_RETURN_IF_ERROR(m.OptString("intent_id", &id_text));
  if (!id_text.empty()) {
    HANDOFF_ASSIGN_OR_RETURN(p.intent_id, IntentId::Parse(id_text));
  }
  HANDOFF_RETURN_IF_ERROR(m.String("intent_type", &p.intent_type));
  HANDOFF_RETURN_IF_ERROR(m.String("to_agent", &p.to_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("from_agent", &p.from_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("correlation_id", &p.correlation_id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("parent_id", &p.parent_id));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("lease_ms", &p.lease_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("deadline", &p.deadline_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptString("idempotency_key", &p.idempotency_key));
  HANDOFF_RETURN_IF_ERROR(m.OptString("reply_to", &p.reply_to));
  std::optional<MapReader> approval;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("approval", &approval));
  if (approval) {
    Approval a;
    HANDOFF_RETURN_IF_ERROR(ReadApproval(*approval, &a));
    p.approval = Approval{a.question, a.outcomes, {}, 0, false, {}, {}, {}, 0};
  }
  uint64_t max_attempts = 0;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("max_attempts", &max_attempts));
  if (max_attempts > kMaxAttemptsLimit) {
    return Status::InvalidArgument("max_attempts is above 1000000");
  }
  p.max_attempts = static_cast<uint32_t>(max_attempts);
  HANDOFF_RETURN_IF_ERROR(m.OptInt("retry_initial_ms", &p.retry_initial_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptDouble("retry_multiplier", &p.retry_multiplier));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("retry_max_ms", &p.retry_max_ms));
  if (const msgpack::object* payload = m.Find("payload")) {
    if (payload->type != msgpack::type::MAP) {
      return WrongType("payload", "a map (JSON object)", *payload);
    }
    HANDOFF_ASSIGN_OR_RETURN(p.payload, StoredField(req, "payload", *payload));
  } else {
    p.payload = std::string(1, static_cast<char>(0x80));  // {}
  }
  HANDOFF_RETURN_IF_ERROR(CheckRoom(p.payload.size()));
  HANDOFF_ASSIGN_OR_RETURN(SendResult sent, engine_.Send(txn, batch, p));
  if (wait_rid != 0) {
    // Parked like a `wait` sent right after: answered when the intent ends (or at once, when
    // a repeated send names one that has ended already), after the send's own reply.
    const int64_t now = engine_.clock().NowMs();
    Waiter w{sent.record->id,
             conn,
             wait_rid,
             IsTerminal(sent.record->status) || wait_timeout_ms == 0
                 ? now
                 : now + static_cast<int64_t>(wait_timeout_ms),
             wait_payload ? Blobs::kAll : Blobs::kAllButPayload,
             req.version >= 2};
    waiters_.Add(w);
    send_waits_.push_back(std::move(w));
  }
  ReplyBuilder b(req.rid);
  b.w().Field("intent_id", sent.record->id.ToText().view());
  b.w().Field("status", IntentStatusName(sent.record->status));
  b.w().Field("created", sent.created);
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnGet(Txn& txn, Batch&, const std::string&,
                                        const wire::Request& req) {
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(req.body()));
  IntentRecord r;
  r.id = id;
  return IntentReply(txn, req.rid, r);
}

AgentService::Reply AgentService::OnEvents(Txn& txn, Batch&, const std::string&,
                                           const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  uint64_t since = 0;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("since", &since));
  HANDOFF_ASSIGN_OR_RETURN(uint64_t limit, ReadLimit(m, kMaxListLimit));
  std::vector<EventRecord> events;
  HANDOFF_RETURN_IF_ERROR(engine_.Events(
      txn, id, since > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(since), limit, &events));
  ReplyBuilder b(req.rid);
  b.w().Key("events");
  b.w().BeginArray();
  for (const EventRecord& e : events) {
    b.w().BeginMap();
    WriteEventFields(b.w(), e);
    b.w().EndMap();
  }
  b.w().EndArray();
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnWait(Txn& txn, Batch&, const std::string& conn,
                                         const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  uint64_t timeout_ms = 30'000;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("timeout_ms", &timeout_ms));
  if (timeout_ms > static_cast<uint64_t>(kMaxWaitMs)) timeout_ms = kMaxWaitMs;
  bool brief = false;   // the record only (agents watching for a cancel)
  bool payload = true;  // false: all but the payload
  HANDOFF_RETURN_IF_ERROR(m.OptBool("brief", &brief));
  HANDOFF_RETURN_IF_ERROR(m.OptBool("payload", &payload));
  const Blobs blobs = brief ? Blobs::kNone : payload ? Blobs::kAll : Blobs::kAllButPayload;
  IntentView view;
  HANDOFF_RETURN_IF_ERROR(engine_.GetRecord(txn, id, &view.record));
  if (IsTerminal(view.record.status) || timeout_ms == 0) {
    HANDOFF_RETURN_IF_ERROR(engine_.ReadBlobs(txn, &view, blobs));
    return std::optional<std::string>(EncodeWaitReply(req.rid, view));
  }
  waiters_.Add({id, conn, req.rid, engine_.clock().NowMs() + static_cast<int64_t>(timeout_ms),
                blobs, req.version >= 2});
  return std::optional<std::string>();
}

AgentService::Reply AgentService::OnList(Txn& txn, Batch&, const std::string&,
                                         const wire::Request& req) {
  MapReader m = req.body();
  ListFilter filter;
  std::string status;
  HANDOFF_RETURN_IF_ERROR(m.OptString("status", &status));
  if (!status.empty()) {
    filter.status = ParseIntentStatus(status);
    if (!filter.status) {
      return Status::InvalidArgument("unknown status '" + status.substr(0, 32) +
                                     "'; use CREATED, SUBMITTED, DELIVERED, ACKNOWLEDGED, "
                                     "IN_PROGRESS, WAITING, COMPLETED, FAILED, CANCELED or "
                                     "TIMED_OUT");
    }
  }
  HANDOFF_RETURN_IF_ERROR(m.OptString("to_agent", &filter.to_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("from_agent", &filter.from_agent));
  if (!filter.to_agent.empty()) HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(filter.to_agent));
  if (!filter.from_agent.empty()) HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(filter.from_agent));
  HANDOFF_ASSIGN_OR_RETURN(filter.limit, ReadLimit(m, 100));
  std::vector<IntentRecord> records;
  HANDOFF_RETURN_IF_ERROR(engine_.List(txn, filter, &records));
  ReplyBuilder b(req.rid);
  b.w().Key("intents");
  b.w().BeginArray();
  for (const IntentRecord& r : records) {
    b.w().BeginMap();
    WriteIntentFields(b.w(), r);
    b.w().EndMap();
  }
  b.w().EndArray();
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnCancel(Txn& txn, Batch& batch, const std::string&,
                                           const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  std::string actor, reason;
  HANDOFF_RETURN_IF_ERROR(m.OptString("actor", &actor));
  HANDOFF_RETURN_IF_ERROR(m.OptString("reason", &reason));
  if (!actor.empty() && actor.size() > kMaxAddressLength) {
    return Status::InvalidArgument("field 'actor' is longer than 255 bytes");
  }
  if (reason.size() > 1024) return Status::InvalidArgument("field 'reason' is longer than 1 KiB");
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* r, engine_.Cancel(txn, batch, id, actor, reason));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnReceive(Txn&, Batch&, const std::string& conn,
                                            const wire::Request& req) {
  MapReader m = req.body();
  std::string address;
  uint64_t credit = 1;
  HANDOFF_RETURN_IF_ERROR(m.String("address", &address));
  HANDOFF_RETURN_IF_ERROR(m.OptUint("credit", &credit));
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(address));
  if (credit > kMaxCredit) {
    return Status::InvalidArgument("field 'credit' must be at most " + std::to_string(kMaxCredit));
  }
  if (!receivers_.Register(conn, address, static_cast<uint32_t>(credit), engine_.clock().NowMs(),
                           req.version >= 2)) {
    return Status::InvalidArgument("this connection already receives for " +
                                   std::to_string(kMaxAddressesPerConnection) +
                                   " addresses, the most one connection may");
  }
  ReplyBuilder b(req.rid);
  b.w().Field("address", address);
  b.w().Field("credit", credit);
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnAck(Txn& txn, Batch& batch, const std::string&,
                                        const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  receivers_.HeardAbout(id, engine_.clock().NowMs());
  HANDOFF_ASSIGN_OR_RETURN(uint32_t attempt, ReadAttempt(m));
  bool start = false;
  HANDOFF_RETURN_IF_ERROR(m.OptBool("start", &start));
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* r, engine_.Ack(txn, batch, id, attempt, start));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnHeartbeat(Txn& txn, Batch& batch, const std::string&,
                                              const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  receivers_.HeardAbout(id, engine_.clock().NowMs());
  HANDOFF_ASSIGN_OR_RETURN(uint32_t attempt, ReadAttempt(m));
  HANDOFF_ASSIGN_OR_RETURN(HeartbeatResult hb, engine_.Heartbeat(txn, batch, id, attempt));
  ReplyBuilder b(req.rid);
  b.w().Field("intent_id", hb.record->id.ToText().view());
  b.w().Field("status", IntentStatusName(hb.record->status));
  b.w().Field("delivery_attempt", hb.record->delivery_attempt);
  b.w().Field("lease_ms", hb.record->lease_ms);
  b.w().Field("lease_expires_at", hb.lease_expires_at_ms);
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnCheckpoint(Txn& txn, Batch& batch, const std::string&,
                                               const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  receivers_.HeardAbout(id, engine_.clock().NowMs());
  HANDOFF_ASSIGN_OR_RETURN(uint32_t attempt, ReadAttempt(m));
  const msgpack::object* state = nullptr;
  HANDOFF_RETURN_IF_ERROR(m.Object("state", &state));
  HANDOFF_ASSIGN_OR_RETURN(std::string stored, StoredField(req, "state", *state));
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* r,
                           engine_.Checkpoint(txn, batch, id, attempt, stored));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnComplete(Txn& txn, Batch& batch, const std::string&,
                                             const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  receivers_.HeardAbout(id, engine_.clock().NowMs());
  HANDOFF_ASSIGN_OR_RETURN(uint32_t attempt, ReadAttempt(m));
  std::string stored;
  if (const msgpack::object* result = m.Find("result")) {
    HANDOFF_ASSIGN_OR_RETURN(stored, StoredField(req, "result", *result));
  }
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* r,
                           engine_.Complete(txn, batch, id, attempt, stored));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnFail(Txn& txn, Batch& batch, const std::string&,
                                         const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  receivers_.HeardAbout(id, engine_.clock().NowMs());
  HANDOFF_ASSIGN_OR_RETURN(uint32_t attempt, ReadAttempt(m));
  std::optional<MapReader> error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("error", &error));
  ErrorInfo info;
  if (error) HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*error, &info));
  HANDOFF_RETURN_IF_ERROR(CheckErrorInfo("error", info));
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* r, engine_.Fail(txn, batch, id, attempt, info));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnDecide(Txn& txn, Batch& batch, const std::string&,
                                           const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  std::string comment, outcome, actor;
  HANDOFF_RETURN_IF_ERROR(m.OptString("comment", &comment));
  HANDOFF_RETURN_IF_ERROR(m.OptString("outcome", &outcome));
  HANDOFF_RETURN_IF_ERROR(m.OptString("actor", &actor));
  if (actor.size() > kMaxAddressLength) return Status::InvalidArgument("actor is too long");
  HANDOFF_ASSIGN_OR_RETURN(
      const IntentRecord* r,
      engine_.Decide(txn, batch, id, req.op == wire::op::kApprove, outcome, comment, actor));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnRequestApproval(Txn& txn, Batch& batch, const std::string&,
                                                    const wire::Request& req) {
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  HANDOFF_ASSIGN_OR_RETURN(uint32_t attempt, ReadAttempt(m));
  Approval question;
  HANDOFF_RETURN_IF_ERROR(ReadApproval(m, &question));
  if (question.question.empty()) return Status::InvalidArgument("missing field 'question'");
  HANDOFF_ASSIGN_OR_RETURN(const IntentRecord* r,
                           engine_.RequestApproval(txn, batch, id, attempt, question));
  return BriefReply(req.rid, *r);
}

AgentService::Reply AgentService::OnAudit(Txn& txn, Batch&, const std::string&,
                                          const wire::Request& req) {
  MapReader m = req.body();
  uint64_t since = 0;
  HANDOFF_RETURN_IF_ERROR(m.OptUint("since", &since));
  HANDOFF_ASSIGN_OR_RETURN(uint64_t limit, ReadLimit(m, 1000));
  std::vector<EventRecord> events;
  HANDOFF_RETURN_IF_ERROR(engine_.Audit(txn, since, limit, &events));
  ReplyBuilder b(req.rid);
  b.w().Key("entries");
  b.w().BeginArray();
  for (const EventRecord& e : events) {
    b.w().BeginMap();
    b.w().Field("audit_seq", e.audit_seq);
    WriteEventFields(b.w(), e);
    b.w().EndMap();
  }
  b.w().EndArray();
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnPurge(Txn& txn, Batch& batch, const std::string&,
                                          const wire::Request& req) {
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(req.body()));
  HANDOFF_RETURN_IF_ERROR(engine_.Purge(txn, batch, id));
  ReplyBuilder b(req.rid);
  b.w().Field("intent_id", id.ToText().view());
  b.w().Field("purged", true);
  return std::optional<std::string>(b.Finish());
}

AgentService::Reply AgentService::OnReplay(Txn& txn, Batch& batch, const std::string&,
                                           const wire::Request& req) {
  HANDOFF_RETURN_IF_ERROR(CheckRoom(0));
  MapReader m = req.body();
  HANDOFF_ASSIGN_OR_RETURN(IntentId id, ReadId(m));
  std::string actor;
  HANDOFF_RETURN_IF_ERROR(m.OptString("actor", &actor));
  if (actor.size() > kMaxAddressLength) return Status::InvalidArgument("actor is too long");
  HANDOFF_ASSIGN_OR_RETURN(SendResult replay, engine_.Replay(txn, batch, id, actor));
  ReplyBuilder b(req.rid);
  b.w().Field("intent_id", replay.record->id.ToText().view());
  b.w().Field("status", IntentStatusName(replay.record->status));
  b.w().Field("replay_of", id.ToText().view());
  return std::optional<std::string>(b.Finish());
}

}  // namespace handoff::node
