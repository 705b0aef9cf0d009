#include "cli/commands.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "base/time_format.h"
#include "base/units.h"
#include "cli/render.h"

namespace handoff::cli {
namespace {

using std::chrono::milliseconds;

// "No limit" for waits, kept far from overflowing steady_clock arithmetic.
constexpr milliseconds kForever{int64_t{10} * 365 * 24 * 3600 * 1000};

Result<milliseconds> ParseTimeout(const std::string& text) {
  if (text.empty()) return kForever;
  HANDOFF_ASSIGN_OR_RETURN(int64_t ms, ParseDurationMs(text));
  return milliseconds(ms);
}

// The attempt an agent command acts for: the flag, else $HANDOFF_ATTEMPT when the command runs
// under `serve` for the same intent, else 0 (the current attempt).
uint32_t AttemptFor(const std::string& intent_id, const std::optional<uint32_t>& flag) {
  if (flag) return *flag;
  const char* id = std::getenv("HANDOFF_INTENT_ID");
  const char* attempt = std::getenv("HANDOFF_ATTEMPT");
  if (id && attempt && intent_id == id) {
    return static_cast<uint32_t>(std::strtoul(attempt, nullptr, 10));
  }
  return 0;
}

uint32_t AttemptFor(const AgentOpFlags& f) { return AttemptFor(f.id, f.attempt); }

// "ID STATUS" (or {intent_id, status}) after cancel, approve and reject.
int PrintStatus(const Global& g, const std::string& id, IntentStatus status) {
  if (g.json) {
    PrintJson(OrderedJson{{"intent_id", id}, {"status", std::string(IntentStatusName(status))}});
  } else {
    Print(id + " " + std::string(IntentStatusName(status)) + "\n");
  }
  return kExitOk;
}

// Shows a finished wait and picks the exit code.
int ReportWait(const Global& g, const Result<Intent>& done) {
  if (!done.ok()) {
    if (done.status().IsTimedOut()) {
      std::fprintf(stderr, "handoffctl: %s\n", done.status().ToString().c_str());
      return kExitWaitTimeout;
    }
    return Error(done.status());
  }
  if (g.json) {
    PrintJson(IntentJson(*done));
  } else if (done->status == IntentStatus::kCompleted) {
    Print(done->result.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
  } else {
    std::string line = std::string(IntentStatusName(done->status));
    if (done->error) line += ": " + done->error->code + ": " + done->error->message;
    std::fprintf(stderr, "handoffctl: intent %s ended %s\n", done->intent_id.c_str(), line.c_str());
  }
  return ExitFor(done->status);
}

}  // namespace

std::string DecidedBy(const std::string& actor) {
  if (!actor.empty()) return actor;
  const char* user = std::getenv("USER");
  return std::string("human:") + (user && *user ? user : "operator");
}

int Error(const Status& status) {
  std::fprintf(stderr, "handoffctl: %s\n", status.ToString().c_str());
  return kExitError;
}

int ExitFor(IntentStatus status) {
  switch (status) {
    case IntentStatus::kCompleted:
      return kExitOk;
    case IntentStatus::kFailed:
      return kExitFailed;
    case IntentStatus::kCanceled:
      return kExitCanceled;
    case IntentStatus::kTimedOut:
      return kExitTimedOut;
    default:
      return kExitWaitTimeout;
  }
}

Result<ClientOptions> MakeClientOptions(const Global& g) {
  ClientOptions options;
  options.endpoint = g.socket;
  HANDOFF_ASSIGN_OR_RETURN(int64_t ms, ParseDurationMs(g.request_timeout));
  options.request_timeout = milliseconds(ms);
  return options;
}

Result<std::unique_ptr<Client>> Connect(const Global& g) {
  HANDOFF_ASSIGN_OR_RETURN(ClientOptions options, MakeClientOptions(g));
  return Client::Connect(options);
}

namespace {

// All of `in`, unless it holds more than kMaxJsonInputBytes (a 10 GB file, /dev/zero).
Result<std::string> ReadBounded(std::istream& in, const std::string& what,
                                const std::string& source) {
  std::string out;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) {
    out.append(chunk, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxJsonInputBytes) {
      return Status::InvalidArgument(what + " from " + source + " is larger than " +
                                     FormatByteSize(kMaxJsonInputBytes) +
                                     " (the daemon takes at most 64MiB)");
    }
  }
  if (in.bad()) return Status::InvalidArgument("cannot read " + what + " from " + source);
  return out;
}

}  // namespace

Result<Json> ParseJsonArg(const std::string& text, const std::string& what) {
  if (text == "-") {
    HANDOFF_ASSIGN_OR_RETURN(std::string source, ReadBounded(std::cin, what, "stdin"));
    return ParseJsonText(source, what);
  }
  if (!text.empty() && text[0] == '@') {
    const std::string path = text.substr(1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::InvalidArgument("cannot read " + what + " file " + path);
    HANDOFF_ASSIGN_OR_RETURN(std::string source, ReadBounded(in, what, path));
    return ParseJsonText(source, what);
  }
  return ParseJsonText(text, what);
}

Result<Json> ParseJsonText(const std::string& text, const std::string& what) {
  // Nesting is counted before anything recursive runs: brackets outside strings.
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return Status::InvalidArgument(what + " is nested more than " +
                                       std::to_string(kMaxJsonDepth) + " levels deep");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    // The parser quotes what it read last, which may be any bytes: printable ASCII only.
    std::string why = e.what();
    for (char& c : why) {
      if (c < 0x20 || c >= 0x7f) c = '?';
    }
    return Status::InvalidArgument(what + " is not valid JSON: " + why);
  }
}

int Send(const Global& g, const SendFlags& f) {
  SendRequest req;
  req.to_agent = f.to;
  req.intent_type = f.type;
  req.from_agent = f.from;
  req.correlation_id = f.correlation_id;
  req.parent_id = f.parent_id;
  req.intent_id = f.id;
  auto payload = ParseJsonArg(f.payload, "--payload");
  if (!payload.ok()) return Error(payload.status());
  req.payload = std::move(payload).value();
  if (!f.lease.empty()) {
    auto lease = ParseDurationMs(f.lease);
    if (!lease.ok()) return Error(lease.status());
    req.lease = milliseconds(*lease);
  }
  if (!f.deadline.empty()) {
    // An RFC 3339 time, or a duration from now.
    auto at = ParseRfc3339(f.deadline);
    if (at.ok()) {
      req.deadline_ms = *at;
    } else {
      auto in = ParseDurationMs(f.deadline);
      if (!in.ok()) {
        return Error(Status::InvalidArgument("invalid --deadline '" + f.deadline +
                                             "': use a duration (30s, 5m, 2h) or an RFC 3339 "
                                             "time (2026-11-24T18:00:00Z)"));
      }
      req.deadline_ms = SystemClock::Instance().NowMs() + *in;
    }
  }
  req.max_attempts = f.max_attempts;
  req.idempotency_key = f.idempotency_key;
  req.reply_to = f.reply_to;
  if (f.require_approval || !f.prompt.empty() || !f.outcomes.empty()) {
    req.require_approval = Approval{f.prompt, f.outcomes, {}, 0, false, {}, {}, {}, 0};
  }
  req.retry_multiplier = f.retry_multiplier;
  for (auto [text, out] :
       {std::pair{&f.retry_initial, &req.retry_initial}, std::pair{&f.retry_max, &req.retry_max}}) {
    if (text->empty()) continue;
    auto ms = ParseDurationMs(*text);
    if (!ms.ok()) return Error(ms.status());
    *out = milliseconds(*ms);
  }
  auto timeout = ParseTimeout(f.timeout);
  if (!timeout.ok()) return Error(timeout.status());
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  if (f.wait) {
    // One request: the daemon parks the wait with the send. Standard output gets one line,
    // the result (a script's `$(handoffctl send --wait ...)`); the id goes to standard error
    // as soon as the intent is stored, so that it is known even if the wait is cut short.
    bool stored = false;
    auto done = (*client)->SendAndWait(req, *timeout, [&](const SendReceipt& receipt) {
      stored = true;
      if (!g.json)
        std::fprintf(stderr, "handoffctl: stored intent %s\n", receipt.intent_id.c_str());
    });
    if (!stored) return Error(done.status());
    return ReportWait(g, std::move(done));
  }
  auto receipt = (*client)->Send(req);
  if (!receipt.ok()) return Error(receipt.status());
  if (g.json) {
    PrintJson(OrderedJson{{"intent_id", receipt->intent_id},
                          {"status", std::string(IntentStatusName(receipt->status))},
                          {"created", receipt->created}});
  } else {
    Print(receipt->intent_id + "\n");
  }
  return kExitOk;
}

int Get(const Global& g, const std::string& id) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto intent = (*client)->Get(id);
  if (!intent.ok()) return Error(intent.status());
  if (g.json) {
    PrintJson(IntentJson(*intent));
  } else {
    Print(IntentText(*intent));
  }
  return kExitOk;
}

int Events(const Global& g, const EventsFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto events = (*client)->Events(f.id, f.since);
  if (!events.ok()) return Error(events.status());
  if (g.json) {
    OrderedJson all = OrderedJson::array();
    for (const Event& e : *events) all.push_back(EventJson(e));
    PrintJson(all);
  } else {
    Print(EventsText(*events));
  }
  return kExitOk;
}

int List(const Global& g, const ListFlags& f) {
  ListOptions options;
  if (!f.status.empty()) {
    options.status = ParseIntentStatus(f.status);
    if (!options.status) {
      return Error(Status::InvalidArgument("unknown status '" + f.status +
                                           "'; use SUBMITTED, DELIVERED, ACKNOWLEDGED, "
                                           "IN_PROGRESS, WAITING, COMPLETED, FAILED, CANCELED "
                                           "or TIMED_OUT"));
    }
  }
  options.to_agent = f.to;
  options.from_agent = f.from;
  options.limit = f.limit;
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto intents = (*client)->List(options);
  if (!intents.ok()) return Error(intents.status());
  if (g.json) {
    OrderedJson all = OrderedJson::array();
    for (const Intent& in : *intents) all.push_back(IntentJson(in, /*with_blobs=*/false));
    PrintJson(all);
  } else {
    Print(ListText(*intents));
  }
  return kExitOk;
}

int Wait(const Global& g, const WaitFlags& f) {
  auto timeout = ParseTimeout(f.timeout);
  if (!timeout.ok()) return Error(timeout.status());
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  return ReportWait(g, (*client)->Wait(f.id, *timeout));
}

int Cancel(const Global& g, const CancelFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto status = (*client)->Cancel(f.id, f.reason, "operator");
  if (!status.ok()) return Error(status.status());
  return PrintStatus(g, f.id, *status);
}

int Checkpoint(const Global& g, const AgentOpFlags& f) {
  auto state = ParseJsonArg(f.state, "--state");
  if (!state.ok()) return Error(state.status());
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  Status s = (*client)->Checkpoint(f.id, AttemptFor(f), *state);
  return s.ok() ? kExitOk : Error(s);
}

int Complete(const Global& g, const AgentOpFlags& f) {
  Json result;
  if (!f.result.empty()) {
    auto parsed = ParseJsonArg(f.result, "--result");
    if (!parsed.ok()) return Error(parsed.status());
    result = std::move(parsed).value();
  }
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  Status s = (*client)->Complete(f.id, AttemptFor(f), result);
  return s.ok() ? kExitOk : Error(s);
}

int Fail(const Global& g, const AgentOpFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  Status s = (*client)->Fail(f.id, AttemptFor(f), {f.code, f.message, f.retryable});
  return s.ok() ? kExitOk : Error(s);
}

int Heartbeat(const Global& g, const AgentOpFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  Status s = (*client)->Heartbeat(f.id, AttemptFor(f));
  return s.ok() ? kExitOk : Error(s);
}

int DeadLetters(const Global& g, size_t limit) {
  ListOptions options;
  options.status = IntentStatus::kFailed;
  options.limit = limit;
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto intents = (*client)->List(options);
  if (!intents.ok()) return Error(intents.status());
  const int64_t now = SystemClock::Instance().NowMs();
  if (g.json) {
    OrderedJson all = OrderedJson::array();
    for (const Intent& in : *intents) {
      OrderedJson j = IntentJson(in, /*with_blobs=*/false);
      j["age_ms"] = now - in.updated_at_ms;
      all.push_back(std::move(j));
    }
    PrintJson(all);
  } else {
    Print(DeadLettersText(*intents, now));
  }
  return kExitOk;
}

int Replay(const Global& g, const std::string& id) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto receipt = (*client)->Replay(id, "operator");
  if (!receipt.ok()) return Error(receipt.status());
  if (g.json) {
    PrintJson(OrderedJson{{"intent_id", receipt->intent_id},
                          {"status", std::string(IntentStatusName(receipt->status))},
                          {"replay_of", id}});
  } else {
    Print(receipt->intent_id + "\n");
  }
  return kExitOk;
}

int Purge(const Global& g, const std::vector<std::string>& ids) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  std::vector<std::string> purged;
  for (const std::string& id : ids) {
    Status s = (*client)->Purge(id);
    if (!s.ok()) {
      if (g.json && !purged.empty()) PrintJson(OrderedJson{{"purged", purged}});
      return Error(s);
    }
    purged.push_back(id);
    if (!g.json) Print("purged " + id + "\n");
  }
  if (g.json) PrintJson(OrderedJson{{"purged", purged}});
  return kExitOk;
}

int Approve(const Global& g, const DecideFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto status = (*client)->Approve(f.id, f.comment, f.outcome, DecidedBy(f.actor));
  if (!status.ok()) return Error(status.status());
  return PrintStatus(g, f.id, *status);
}

int Reject(const Global& g, const DecideFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto status = (*client)->Reject(f.id, f.comment, DecidedBy(f.actor));
  if (!status.ok()) return Error(status.status());
  return PrintStatus(g, f.id, *status);
}

int Approvals(const Global& g, size_t limit) {
  ListOptions options;
  options.status = IntentStatus::kWaiting;
  options.limit = limit;
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto intents = (*client)->List(options);
  if (!intents.ok()) return Error(intents.status());
  std::vector<Intent> pending;
  for (Intent& in : *intents) {
    if (in.waiting_reason == "HUMAN" && in.approval && !in.approval->decided()) {
      pending.push_back(std::move(in));
    }
  }
  const int64_t now = SystemClock::Instance().NowMs();
  if (g.json) {
    OrderedJson all = OrderedJson::array();
    for (const Intent& in : pending) {
      all.push_back(OrderedJson{{"intent_id", in.intent_id},
                                {"intent_type", in.intent_type},
                                {"from_agent", in.from_agent},
                                {"to_agent", in.to_agent},
                                {"question", in.approval->question},
                                {"outcomes", in.approval->outcomes},
                                {"requested_by", in.approval->requested_by},
                                {"mid_work", in.approval->mid_work},
                                {"age_ms", now - in.approval->requested_at_ms}});
    }
    PrintJson(all);
  } else {
    Print(ApprovalsText(pending, now));
  }
  return kExitOk;
}

int RequestApproval(const Global& g, const AskFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  Status s = (*client)->RequestApproval(f.id, AttemptFor(f.id, f.attempt), f.question, f.outcomes);
  return s.ok() ? kExitOk : Error(s);
}

int Audit(const Global& g, const AuditFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  uint64_t since = f.since;
  bool first = true;
  while (true) {
    auto entries = (*client)->Audit(since, f.limit);
    if (!entries.ok()) return Error(entries.status());
    if (!entries->empty()) since = entries->back().audit_seq;
    if (g.json) {
      OrderedJson all = OrderedJson::array();
      for (const AuditEntry& a : *entries) {
        OrderedJson j = EventJson(a.event);
        j["audit_seq"] = a.audit_seq;
        if (f.follow) {
          Print(j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace) + "\n");
        } else {
          all.push_back(std::move(j));
        }
      }
      if (!f.follow) PrintJson(all);
    } else if (!entries->empty() || (first && !f.follow)) {
      Print(AuditText(*entries, first));
      first = false;
    }
    if (!f.follow) return kExitOk;
    std::fflush(stdout);
    // Following: a full page means more is waiting; otherwise look again shortly.
    if (entries->size() < f.limit) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace handoff::cli
