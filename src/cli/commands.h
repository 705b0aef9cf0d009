// handoffctl's commands. Each takes the parsed flags, talks to the daemon through the client
// library, prints its output and returns the process exit code (docs/cli.md lists them):
//
//   0  success; for wait (and send --wait): the intent COMPLETED
//   1  an error: bad input, unknown id, refused request, daemon not running or not answering
//   2  usage error (unknown flag, missing argument)
//   3  the intent ended FAILED            (wait, send --wait)
//   4  the intent ended CANCELED          (wait, send --wait)
//   5  the intent ended TIMED_OUT         (wait, send --wait)
//   6  the wait timed out; the intent is still live
//
// Errors are one line on stderr: "handoffctl: <code>: <message>".
//
// Thread safety: run from main's thread.

#ifndef HANDOFF_CLI_COMMANDS_H_
#define HANDOFF_CLI_COMMANDS_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "handoff/client.h"

namespace handoff::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitUsage = 2,
  kExitFailed = 3,
  kExitCanceled = 4,
  kExitTimedOut = 5,
  kExitWaitTimeout = 6,
};

// Flags every command shares.
struct Global {
  std::string socket;  // --socket / HANDOFF_SOCKET
  bool json = false;   // --json
  std::string request_timeout = "10s";
};

struct SendFlags {
  std::string to, type, payload = "{}", from, lease, correlation_id, parent_id, id;
  std::string deadline;  // a duration from now, or an RFC 3339 time
  std::string idempotency_key;
  std::string reply_to;
  bool require_approval = false;
  std::string prompt;
  std::vector<std::string> outcomes;
  uint32_t max_attempts = 0;
  std::string retry_initial, retry_max;
  double retry_multiplier = 0;
  bool wait = false;
  std::string timeout;  // for --wait; empty: no limit
};
struct EventsFlags {
  std::string id;
  uint32_t since = 0;
};
struct ListFlags {
  std::string status, to, from;
  size_t limit = 100;
};
struct WaitFlags {
  std::string id;
  std::string timeout;  // empty: no limit
};
struct CancelFlags {
  std::string id, reason;
};
struct ServeFlags {
  std::string as, exec;
  uint32_t credit = 1;
  std::string heartbeat;  // empty: a third of each lease
};
struct AgentOpFlags {  // checkpoint, complete, fail, heartbeat
  std::string id;
  std::string state, result;  // JSON
  std::string code = "agent_error", message;
  bool retryable = false;
  std::optional<uint32_t> attempt;  // default: $HANDOFF_ATTEMPT when it names the same intent
};

int Send(const Global& g, const SendFlags& f);
int Get(const Global& g, const std::string& id);
int Events(const Global& g, const EventsFlags& f);
int List(const Global& g, const ListFlags& f);
int Wait(const Global& g, const WaitFlags& f);
int Cancel(const Global& g, const CancelFlags& f);
int NodeStatus(const Global& g);
int Serve(const Global& g, const ServeFlags& f);
int Checkpoint(const Global& g, const AgentOpFlags& f);
int Complete(const Global& g, const AgentOpFlags& f);
int Fail(const Global& g, const AgentOpFlags& f);
int Heartbeat(const Global& g, const AgentOpFlags& f);
int DeadLetters(const Global& g, size_t limit);
struct DecideFlags {
  std::string id, comment, outcome, actor;
};
int Approve(const Global& g, const DecideFlags& f);
int Reject(const Global& g, const DecideFlags& f);
int Approvals(const Global& g, size_t limit);
struct AskFlags {
  std::string id, question;
  std::vector<std::string> outcomes;
  std::optional<uint32_t> attempt;
};
int RequestApproval(const Global& g, const AskFlags& f);
struct AuditFlags {
  uint64_t since = 0;
  size_t limit = 1000;
  bool follow = false;
};
int Audit(const Global& g, const AuditFlags& f);
int Replay(const Global& g, const std::string& id);
// Deletes ended intents (dead letters included) and their history now.
int Purge(const Global& g, const std::vector<std::string>& ids);
// Local addresses: receivers, credit, in flight, queued, last heard, paused.
int Agents(const Global& g);
struct PauseFlags {
  std::string address, reason, actor;
};
// The kill switch: stop / restart deliveries to an address.
int Pause(const Global& g, const PauseFlags& f);
int Resume(const Global& g, const PauseFlags& f);
// Exit 0 when the daemon answers and accepts sends (for probes); 1 otherwise, saying why.
int Health(const Global& g);

// Shared by the commands.
int Error(const Status& status);
// Writes to stdout as is; JSON indented, any byte that is not UTF-8 shown as U+FFFD.
inline void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
template <typename J>
void PrintJson(const J& j) {
  Print(j.dump(2, ' ', false, J::error_handler_t::replace) + "\n");
}
// Who acts, for the record (decisions, pauses): --actor, else human:$USER.
std::string DecidedBy(const std::string& actor);
Result<ClientOptions> MakeClientOptions(const Global& g);
Result<std::unique_ptr<Client>> Connect(const Global& g);
// JSON text, "@file", or "-" for stdin (at most kMaxJsonInputBytes read); `what` names the
// flag in errors.
inline constexpr size_t kMaxJsonInputBytes = size_t{128} << 20;
Result<Json> ParseJsonArg(const std::string& text, const std::string& what);
// Parses JSON text that came from a user or a command, refusing with InvalidArgument what the
// daemon could not take anyway before it can hurt: nesting deeper than kMaxJsonDepth (a
// parser or a destructor recursing 100,000 deep overflows the stack), invalid UTF-8 and
// everything else the parser refuses. `what` names the input in the message.
inline constexpr size_t kMaxJsonDepth = 64;
Result<Json> ParseJsonText(const std::string& text, const std::string& what);
// The exit code for a terminal status.
int ExitFor(IntentStatus status);

}  // namespace handoff::cli

#endif  // HANDOFF_CLI_COMMANDS_H_
