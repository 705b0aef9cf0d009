#include "handoff/client.h"

#include <algorithm>

#include "base/clock.h"
#include "base/defaults.h"
#include "base/intent_id.h"
#include "base/names.h"
#include "base/records.h"
#include "client/connection.h"
#include "client/convert.h"
#include "net/endpoint.h"

namespace handoff {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// A parked wait is answered at its deadline; silence this much longer means the daemon lost it
// (it restarted), so the wait is sent again.
constexpr milliseconds kWaitChunk{5'000};
constexpr milliseconds kWaitGrace{1'500};

Status CheckId(std::string_view id) { return IntentId::Parse(id).status(); }

void WriteId(MsgWriter& w, std::string_view id) { w.Field("intent_id", id); }

Result<Intent> IntentFromReply(const ReceivedReply& got) {
  const msgpack::object* intent = got.reply.body().Find("intent");
  if (intent == nullptr) return Status::Corruption("reply without an intent");
  return ReadIntent(*intent);
}

// A reply as JSON, without its envelope.
Result<Json> ReplyJson(const ReceivedReply& got) {
  HANDOFF_ASSIGN_OR_RETURN(Json out, MsgpackToJson(got.reply.handle.get()));
  for (const char* envelope : {"v", "rid", "ok"}) out.erase(envelope);
  return out;
}

}  // namespace

Client::Client(std::unique_ptr<Connection> connection) : connection_(std::move(connection)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Connection::Open(options));
  return std::unique_ptr<Client>(new Client(std::move(connection)));
}

const std::string& Client::endpoint() const { return connection_->options().endpoint; }

std::string_view Client::transport() const { return connection_->transport(); }

Result<SendReceipt> Client::Send(const SendRequest& request) {
  return SendWithWait(request, 0, milliseconds(0));
}

Result<SendReceipt> Client::SendWithWait(const SendRequest& request, uint64_t wait_rid,
                                         milliseconds wait_timeout) {
  if (!request.payload.is_object()) {
    return Status::InvalidArgument("payload must be a JSON object, not " +
                                   std::string(request.payload.type_name()));
  }
  // The id is chosen here so that resending after a lost reply cannot store a second intent
  // (a resend with a wait_rid parks a second wait; its answer comes to a rid nobody awaits
  // any more and is dropped).
  std::string id = request.intent_id.empty()
                       ? NewIntentId(SystemClock::Instance().NowMs()).ToString()
                       : request.intent_id;
  HANDOFF_RETURN_IF_ERROR(CheckId(id));
  const std::string payload = JsonToMsgpack(request.payload);
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("send", [&](MsgWriter& w) {
    w.Field("intent_id", id);
    w.Field("intent_type", request.intent_type);
    w.Field("to_agent", request.to_agent);
    if (!request.from_agent.empty()) w.Field("from_agent", request.from_agent);
    if (!request.correlation_id.empty()) w.Field("correlation_id", request.correlation_id);
    if (!request.parent_id.empty()) w.Field("parent_id", request.parent_id);
    if (request.lease.count() > 0) w.Field("lease_ms", static_cast<int64_t>(request.lease.count()));
    if (request.deadline_ms != 0) w.Field("deadline", request.deadline_ms);
    if (!request.idempotency_key.empty()) w.Field("idempotency_key", request.idempotency_key);
    if (!request.reply_to.empty()) w.Field("reply_to", request.reply_to);
    if (request.require_approval) {
      w.Key("approval");
      WriteApproval(w, *request.require_approval);
    }
    if (request.max_attempts != 0) w.Field("max_attempts", request.max_attempts);
    if (request.retry_initial.count() > 0) {
      w.Field("retry_initial_ms", static_cast<int64_t>(request.retry_initial.count()));
    }
    if (request.retry_multiplier != 0) w.Field("retry_multiplier", request.retry_multiplier);
    if (request.retry_max.count() > 0) {
      w.Field("retry_max_ms", static_cast<int64_t>(request.retry_max.count()));
    }
    if (wait_rid != 0) {
      w.Field("wait_rid", wait_rid);
      w.Field("wait_timeout_ms", static_cast<uint64_t>(wait_timeout.count()));
      w.Field("wait_payload", false);  // SendAndWait has it: the request's
    }
    w.FieldRaw("payload", payload);
  }));
  MapReader body = got.reply.body();
  SendReceipt receipt;
  std::string status;
  HANDOFF_RETURN_IF_ERROR(body.String("intent_id", &receipt.intent_id));
  HANDOFF_RETURN_IF_ERROR(body.OptString("status", &status));
  HANDOFF_RETURN_IF_ERROR(body.OptBool("created", &receipt.created));
  receipt.status = ParseIntentStatus(status).value_or(IntentStatus::kSubmitted);
  return receipt;
}

Result<Intent> Client::SendAndWait(const SendRequest& request, milliseconds timeout,
                                   const std::function<void(const SendReceipt&)>& on_stored) {
  const auto deadline = SteadyClock::now() + timeout;
  const milliseconds chunk = std::clamp(timeout, milliseconds(0), kWaitChunk);
  const uint64_t wait_rid = connection_->ReserveRid();
  HANDOFF_ASSIGN_OR_RETURN(SendReceipt receipt, SendWithWait(request, wait_rid, chunk));
  if (on_stored) on_stored(receipt);
  // The wait parked with the send answers within `chunk`, unless the connection or the daemon
  // went away meanwhile: then, or when the intent is still live, go on as Wait does.
  auto answer = connection_->AwaitReply(wait_rid, chunk + kWaitGrace);
  if (answer.ok() && answer->has_value()) {
    HANDOFF_ASSIGN_OR_RETURN(Intent intent, IntentFromReply(**answer));
    if (IsTerminal(intent.status)) {
      // Answered without the payload (wait_payload: false), which is the one sent: the daemon
      // stores a send's payload as it came, and refuses a resend whose payload differs.
      // A daemon from before wait_payload sends it anyway.
      if (intent.payload.is_null()) intent.payload = request.payload;
      return intent;
    }
  }
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
  return Wait(receipt.intent_id, std::max(left, milliseconds(0)));
}

Result<Intent> Client::Get(std::string_view intent_id) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got,
                           connection_->Call("get", [&](MsgWriter& w) { WriteId(w, intent_id); }));
  return IntentFromReply(got);
}

Result<std::vector<Event>> Client::Events(std::string_view intent_id, uint32_t since) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("events", [&](MsgWriter& w) {
    WriteId(w, intent_id);
    w.Field("since", since);
  }));
  const msgpack::object* events = got.reply.body().Find("events");
  if (events == nullptr || events->type != msgpack::type::ARRAY) {
    return Status::Corruption("events reply without an events array");
  }
  std::vector<Event> out;
  for (uint32_t i = 0; i < events->via.array.size; ++i) {
    HANDOFF_ASSIGN_OR_RETURN(Event e, ReadEvent(events->via.array.ptr[i]));
    out.push_back(std::move(e));
  }
  return out;
}

Result<Intent> Client::Wait(std::string_view intent_id, milliseconds timeout) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  const auto deadline = SteadyClock::now() + timeout;
  std::optional<SteadyClock::time_point> silent_since;
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    milliseconds chunk = std::clamp(left, milliseconds(0), kWaitChunk);
    auto got = connection_->Call(
        "wait",
        [&](MsgWriter& w) {
          WriteId(w, intent_id);
          w.Field("timeout_ms", static_cast<uint64_t>(chunk.count()));
        },
        Connection::Resend::kNo, chunk + kWaitGrace);
    if (!got.ok()) {
      if (!got.status().IsUnavailable()) return got.status();
      // The daemon is silent: it may be restarting. Keep asking for a bounded time.
      if (!silent_since) silent_since = SteadyClock::now();
      if (SteadyClock::now() - *silent_since >= connection_->options().request_timeout) {
        return got.status();
      }
      continue;
    }
    silent_since.reset();
    HANDOFF_ASSIGN_OR_RETURN(Intent intent, IntentFromReply(*got));
    if (IsTerminal(intent.status)) return intent;
    if (SteadyClock::now() >= deadline) {
      return Status::TimedOut("intent " + std::string(intent_id) + " is still " +
                              std::string(IntentStatusName(intent.status)) + " after waiting " +
                              std::to_string(timeout.count()) + " ms");
    }
  }
}

Result<IntentStatus> Client::WatchStatus(std::string_view intent_id, milliseconds timeout) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  timeout = std::clamp(timeout, milliseconds(0), milliseconds(5 * 60 * 1000));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call(
                                                  "wait",
                                                  [&](MsgWriter& w) {
                                                    WriteId(w, intent_id);
                                                    w.Field("timeout_ms",
                                                            static_cast<uint64_t>(timeout.count()));
                                                    w.Field("brief", true);
                                                  },
                                                  Connection::Resend::kNo, timeout + kWaitGrace));
  const msgpack::object* intent = got.reply.body().Find("intent");
  if (intent == nullptr) return Status::Corruption("wait reply without an intent");
  HANDOFF_ASSIGN_OR_RETURN(MapReader fields, MapReader::From(*intent, "intent"));
  std::string status;
  HANDOFF_RETURN_IF_ERROR(fields.String("status", &status));
  auto parsed = ParseIntentStatus(status);
  if (!parsed) return Status::Corruption("wait reply with an unknown status");
  return *parsed;
}

Result<std::vector<Intent>> Client::List(const ListOptions& options) {
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("list", [&](MsgWriter& w) {
    if (options.status) w.Field("status", IntentStatusName(*options.status));
    if (!options.to_agent.empty()) w.Field("to_agent", options.to_agent);
    if (!options.from_agent.empty()) w.Field("from_agent", options.from_agent);
    w.Field("limit", static_cast<uint64_t>(options.limit));
  }));
  const msgpack::object* intents = got.reply.body().Find("intents");
  if (intents == nullptr || intents->type != msgpack::type::ARRAY) {
    return Status::Corruption("list reply without an intents array");
  }
  std::vector<Intent> out;
  for (uint32_t i = 0; i < intents->via.array.size; ++i) {
    HANDOFF_ASSIGN_OR_RETURN(Intent intent, ReadIntent(intents->via.array.ptr[i]));
    out.push_back(std::move(intent));
  }
  return out;
}

Result<IntentStatus> Client::Cancel(std::string_view intent_id, std::string_view reason,
                                    std::string_view actor) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  // Not resent: a second cancel of a canceled intent is refused, which would misreport success.
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call(
                                                  "cancel",
                                                  [&](MsgWriter& w) {
                                                    WriteId(w, intent_id);
                                                    if (!reason.empty()) w.Field("reason", reason);
                                                    if (!actor.empty()) w.Field("actor", actor);
                                                  },
                                                  Connection::Resend::kNo));
  std::string status;
  HANDOFF_RETURN_IF_ERROR(got.reply.body().OptString("status", &status));
  return ParseIntentStatus(status).value_or(IntentStatus::kCanceled);
}

namespace {

Result<IntentStatus> BriefStatus(const ReceivedReply& got) {
  std::string status;
  HANDOFF_RETURN_IF_ERROR(got.reply.body().OptString("status", &status));
  auto parsed = ParseIntentStatus(status);
  if (!parsed) return Status::Corruption("reply without a status");
  return *parsed;
}

}  // namespace

Result<IntentStatus> Client::Approve(std::string_view intent_id, std::string_view comment,
                                     std::string_view outcome, std::string_view actor) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call(
                                                  "approve",
                                                  [&](MsgWriter& w) {
                                                    WriteId(w, intent_id);
                                                    if (!comment.empty())
                                                      w.Field("comment", comment);
                                                    if (!outcome.empty())
                                                      w.Field("outcome", outcome);
                                                    if (!actor.empty()) w.Field("actor", actor);
                                                  },
                                                  Connection::Resend::kNo));
  return BriefStatus(got);
}

Result<IntentStatus> Client::Reject(std::string_view intent_id, std::string_view comment,
                                    std::string_view actor) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call(
                                                  "reject",
                                                  [&](MsgWriter& w) {
                                                    WriteId(w, intent_id);
                                                    if (!comment.empty())
                                                      w.Field("comment", comment);
                                                    if (!actor.empty()) w.Field("actor", actor);
                                                  },
                                                  Connection::Resend::kNo));
  return BriefStatus(got);
}

Status Client::RequestApproval(std::string_view intent_id, uint32_t attempt,
                               std::string_view question,
                               const std::vector<std::string>& outcomes) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  return connection_
      ->Call("request_approval",
             [&](MsgWriter& w) {
               WriteId(w, intent_id);
               if (attempt != 0) w.Field("attempt", attempt);
               w.Field("question", question);
               w.Key("outcomes");
               w.BeginArray();
               for (const std::string& o : outcomes) w.String(o);
               w.EndArray();
             })
      .status();
}

Status Client::Purge(std::string_view intent_id) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  return connection_
      ->Call(
          "purge", [&](MsgWriter& w) { WriteId(w, intent_id); }, Connection::Resend::kNo)
      .status();
}

Result<SendReceipt> Client::Replay(std::string_view intent_id, std::string_view actor) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  // Not resent: each replay request makes a new intent.
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call(
                                                  "replay",
                                                  [&](MsgWriter& w) {
                                                    WriteId(w, intent_id);
                                                    if (!actor.empty()) w.Field("actor", actor);
                                                  },
                                                  Connection::Resend::kNo));
  SendReceipt receipt;
  std::string status;
  HANDOFF_RETURN_IF_ERROR(got.reply.body().String("intent_id", &receipt.intent_id));
  HANDOFF_RETURN_IF_ERROR(got.reply.body().OptString("status", &status));
  receipt.status = ParseIntentStatus(status).value_or(IntentStatus::kSubmitted);
  return receipt;
}

Result<std::vector<AuditEntry>> Client::Audit(uint64_t since, size_t limit) {
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("audit", [&](MsgWriter& w) {
    w.Field("since", since);
    w.Field("limit", static_cast<uint64_t>(limit));
  }));
  const msgpack::object* entries = got.reply.body().Find("entries");
  if (entries == nullptr || entries->type != msgpack::type::ARRAY) {
    return Status::Corruption("audit reply without an entries array");
  }
  std::vector<AuditEntry> out;
  for (uint32_t i = 0; i < entries->via.array.size; ++i) {
    const msgpack::object& item = entries->via.array.ptr[i];
    HANDOFF_ASSIGN_OR_RETURN(MapReader m, MapReader::From(item, "audit entry"));
    AuditEntry entry;
    HANDOFF_RETURN_IF_ERROR(m.Uint("audit_seq", &entry.audit_seq));
    HANDOFF_ASSIGN_OR_RETURN(entry.event, ReadEvent(item));
    out.push_back(std::move(entry));
  }
  return out;
}

Result<Json> Client::NodeStatus() {
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("status", nullptr));
  return ReplyJson(got);
}

Status ProbeDaemon(std::string_view endpoint) {
  const std::string where = endpoint.empty() ? DefaultAgentEndpoint() : std::string(endpoint);
  switch (net::ProbeIpc(where)) {
    case net::IpcProbe::kListening:
      return Status::OK();
    case net::IpcProbe::kDenied:
      return Status::IOError(net::IpcDeniedMessage(where));
    case net::IpcProbe::kNothing:
      break;
  }
  return Status::Unavailable("handoffd is not running: nothing listens on " + where);
}

Result<Json> Client::Agents() {
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("agents", nullptr));
  return ReplyJson(got);
}

Result<Json> Client::Pause(std::string_view address, std::string_view reason,
                           std::string_view actor) {
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(address));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("pause", [&](MsgWriter& w) {
    w.Field("address", address);
    if (!reason.empty()) w.Field("reason", reason);
    if (!actor.empty()) w.Field("actor", actor);
  }));
  return ReplyJson(got);
}

Result<Json> Client::Resume(std::string_view address, std::string_view actor) {
  HANDOFF_RETURN_IF_ERROR(ValidateAgentAddress(address));
  HANDOFF_ASSIGN_OR_RETURN(ReceivedReply got, connection_->Call("resume", [&](MsgWriter& w) {
    w.Field("address", address);
    if (!actor.empty()) w.Field("actor", actor);
  }));
  return ReplyJson(got);
}

Status Client::Checkpoint(std::string_view intent_id, uint32_t attempt, const Json& state) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  const std::string encoded = JsonToMsgpack(state);
  return connection_
      ->Call("checkpoint",
             [&](MsgWriter& w) {
               WriteId(w, intent_id);
               if (attempt != 0) w.Field("attempt", attempt);
               w.FieldRaw("state", encoded);
             })
      .status();
}

Status Client::Heartbeat(std::string_view intent_id, uint32_t attempt) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  return connection_
      ->Call("heartbeat",
             [&](MsgWriter& w) {
               WriteId(w, intent_id);
               if (attempt != 0) w.Field("attempt", attempt);
             })
      .status();
}

Status Client::Ack(std::string_view intent_id, uint32_t attempt, bool start) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  return connection_
      ->Call("ack",
             [&](MsgWriter& w) {
               WriteId(w, intent_id);
               if (attempt != 0) w.Field("attempt", attempt);
               w.Field("start", start);
             })
      .status();
}

Status Client::Complete(std::string_view intent_id, uint32_t attempt, const Json& result) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  const std::string encoded = result.is_null() ? std::string() : JsonToMsgpack(result);
  return connection_
      ->Call("complete",
             [&](MsgWriter& w) {
               WriteId(w, intent_id);
               if (attempt != 0) w.Field("attempt", attempt);
               if (!encoded.empty()) w.FieldRaw("result", encoded);
             })
      .status();
}

Status Client::Fail(std::string_view intent_id, uint32_t attempt, const ErrorInfo& error) {
  HANDOFF_RETURN_IF_ERROR(CheckId(intent_id));
  return connection_
      ->Call("fail",
             [&](MsgWriter& w) {
               WriteId(w, intent_id);
               if (attempt != 0) w.Field("attempt", attempt);
               w.Key("error");
               WriteErrorInfo(w, error);
             })
      .status();
}

}  // namespace handoff
