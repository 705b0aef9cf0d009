#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/logging.h"
#include "cli/commands.h"

namespace handoff::cli {
namespace {

// Edits (insertions, deletions, substitutions) from `a` to `b`.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The parser's message, and for a command it does not know, the closest one it does.
std::string UsageError(const CLI::App& app, const CLI::ParseError& e) {
  std::string message = e.what();
  if (app.get_subcommands().empty() && !app.remaining().empty()) {
    const std::string typo = app.remaining().front();
    std::string best;
    size_t best_distance = 3;  // more edits than this is not a typo
    for (const CLI::App* sub : app.get_subcommands({})) {
      const size_t d = EditDistance(typo, sub->get_name());
      if (d < best_distance) {
        best_distance = d;
        best = sub->get_name();
      }
    }
    message = "unknown command '" + typo + "'";
    if (!best.empty()) message += "; did you mean '" + best + "'?";
  }
  return message;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"handoffctl: hand work to agents durably, and follow it"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the command
  Global g;
  app.add_option("--socket", g.socket, "the daemon's agent endpoint (default: $HANDOFF_SOCKET)")
      ->envname("HANDOFF_SOCKET");
  app.add_flag("--json", g.json, "print JSON");
  app.add_option("--request-timeout", g.request_timeout,
                 "give up on a silent daemon after this long (default 10s)");
  app.set_version_flag("--version", std::string("handoffctl ") + HANDOFF_VERSION);

  std::function<int()> run;

  SendFlags send;
  auto* c = app.add_subcommand("send", "hand an intent to an agent; prints its id");
  c->add_option("--to", send.to, "recipient agent://org/env/name")->required();
  c->add_option("--type", send.type, "intent type, intent.<name>.v<N>")->required();
  c->add_option("--payload", send.payload, "JSON object, @file or - for stdin (default {})");
  c->add_option("--from", send.from, "sender agent address");
  c->add_option("--lease", send.lease, "how long the agent may go between heartbeats (30s)");
  c->add_option("--correlation-id", send.correlation_id, "ties related intents together");
  c->add_option("--parent-id", send.parent_id, "the intent this one was made for");
  c->add_option("--id", send.id, "use this intent id (a UUID); a resend with it is a no-op");
  c->add_option("--deadline", send.deadline,
                "time out (TIMED_OUT) at this RFC 3339 time or after this long, e.g. 10m");
  c->add_option("--idempotency-key", send.idempotency_key,
                "a repeat with this key (same sender and body) returns the first intent");
  c->add_option("--reply-to", send.reply_to,
                "when it ends, send its outcome to this address as intent.reply.v1");
  c->add_flag("--require-approval", send.require_approval,
              "hold it (WAITING, HUMAN) until someone runs approve or reject");
  c->add_option("--prompt", send.prompt, "with --require-approval: the question to the approver");
  c->add_option("--outcomes", send.outcomes, "with --require-approval: the choices, a,b,c")
      ->delimiter(',');
  c->add_option("--max-attempts", send.max_attempts,
                "deliveries it gets, lease expiries included (default: the node's, 5)");
  c->add_option("--retry-initial", send.retry_initial, "backoff after the first failure (1s)");
  c->add_option("--retry-multiplier", send.retry_multiplier, "backoff growth per failure (2)");
  c->add_option("--retry-max", send.retry_max, "longest backoff (1m)");
  c->add_flag("--wait", send.wait, "wait for the outcome (exit codes as for wait)");
  c->add_option("--timeout", send.timeout, "with --wait: how long to wait (default: no limit)");
  c->callback([&] { run = [&] { return Send(g, send); }; });

  std::string get_id;
  c = app.add_subcommand("get", "show an intent");
  c->add_option("id", get_id, "intent id")->required();
  c->callback([&] { run = [&] { return Get(g, get_id); }; });

  EventsFlags events;
  c = app.add_subcommand("events", "show an intent's event history");
  c->add_option("id", events.id, "intent id")->required();
  c->add_option("--since", events.since, "only events with seq above this");
  c->callback([&] { run = [&] { return Events(g, events); }; });

  ListFlags list;
  c = app.add_subcommand("list", "list intents, newest first");
  c->add_option("--status", list.status, "only this status (SUBMITTED, COMPLETED, FAILED, ...)");
  c->add_option("--to", list.to, "only intents to this agent");
  c->add_option("--from", list.from, "only intents from this agent");
  c->add_option("--limit", list.limit, "at most this many (default 100)")
      ->check(CLI::Range(1, 10000));
  c->callback([&] { run = [&] { return List(g, list); }; });

  WaitFlags wait;
  c = app.add_subcommand("wait", "wait until an intent ends; exit 0 only if COMPLETED");
  c->add_option("id", wait.id, "intent id")->required();
  c->add_option("--timeout", wait.timeout, "give up after this long (default: no limit)");
  c->callback([&] { run = [&] { return Wait(g, wait); }; });

  CancelFlags cancel;
  c = app.add_subcommand("cancel", "cancel a live intent");
  c->add_option("id", cancel.id, "intent id")->required();
  c->add_option("--reason", cancel.reason, "recorded in the event history");
  c->callback([&] { run = [&] { return Cancel(g, cancel); }; });

  DecideFlags decide;
  c = app.add_subcommand("approve", "approve an intent waiting for a human decision");
  c->add_option("id", decide.id, "intent id")->required();
  c->add_option("--comment", decide.comment, "recorded with the decision");
  c->add_option("--outcome", decide.outcome, "one of the outcomes offered, if any");
  c->add_option("--actor", decide.actor, "who decides (default: human:$USER)");
  c->callback([&] { run = [&] { return Approve(g, decide); }; });
  c = app.add_subcommand("reject", "reject an intent waiting for a human decision");
  c->add_option("id", decide.id, "intent id")->required();
  c->add_option("--comment", decide.comment, "recorded with the decision");
  c->add_option("--actor", decide.actor, "who decides (default: human:$USER)");
  c->callback([&] { run = [&] { return Reject(g, decide); }; });

  size_t approvals_limit = 100;
  c = app.add_subcommand("approvals", "list intents waiting for a human decision");
  c->add_option("--limit", approvals_limit, "at most this many (default 100)")
      ->check(CLI::Range(1, 10000));
  c->callback([&] { run = [&] { return Approvals(g, approvals_limit); }; });

  AskFlags ask;
  c = app.add_subcommand("request-approval",
                         "ask a human about an intent being worked on (from inside an agent)");
  c->add_option("id", ask.id, "intent id")->required();
  c->add_option("--question", ask.question, "what to decide")->required();
  c->add_option("--outcomes", ask.outcomes, "the choices, a,b,c")->delimiter(',');
  c->add_option("--attempt", ask.attempt, "default: $HANDOFF_ATTEMPT under serve");
  c->callback([&] { run = [&] { return RequestApproval(g, ask); }; });

  AuditFlags audit;
  c = app.add_subcommand("audit", "show the node-wide trail of every event, oldest first");
  c->add_option("--since", audit.since, "only entries after this audit seq");
  c->add_option("--limit", audit.limit, "at most this many per page (default 1000)")
      ->check(CLI::Range(1, 10000));
  c->add_flag("--follow", audit.follow, "keep printing new entries as they are recorded");
  c->callback([&] { run = [&] { return Audit(g, audit); }; });

  size_t dlq_limit = 100;
  c = app.add_subcommand("dlq", "list dead letters: failed intents, newest first");
  c->add_option("--limit", dlq_limit, "at most this many (default 100)")
      ->check(CLI::Range(1, 10000));
  c->callback([&] { run = [&] { return DeadLetters(g, dlq_limit); }; });

  std::string replay_id;
  c = app.add_subcommand("replay", "send an ended intent again as a new one; prints its id");
  c->add_option("id", replay_id, "intent id")->required();
  c->callback([&] { run = [&] { return Replay(g, replay_id); }; });

  std::vector<std::string> purge_ids;
  c = app.add_subcommand("purge",
                         "delete ended intents (dead letters included) and their events now");
  c->add_option("id", purge_ids, "intent ids")->required();
  c->callback([&] { run = [&] { return Purge(g, purge_ids); }; });

  c = app.add_subcommand("status", "show the daemon's state");
  c->callback([&] { run = [&] { return NodeStatus(g); }; });
  c = app.add_subcommand("health",
                         "exit 0 if the daemon answers and accepts sends, else 1 (for probes)");
  c->callback([&] { run = [&] { return Health(g); }; });

  c = app.add_subcommand("agents",
                         "list local addresses: receivers, credit, in flight, queued, paused");
  c->callback([&] { run = [&] { return Agents(g); }; });
  PauseFlags pause;
  c = app.add_subcommand("pause",
                         "stop deliveries to an address (sends still queue) until resumed");
  c->add_option("address", pause.address, "agent address")->required();
  c->add_option("--reason", pause.reason, "recorded in the audit trail");
  c->add_option("--actor", pause.actor, "who pauses (default: human:$USER)");
  c->callback([&] { run = [&] { return Pause(g, pause); }; });
  c = app.add_subcommand("resume", "deliver to a paused address again");
  c->add_option("address", pause.address, "agent address")->required();
  c->add_option("--actor", pause.actor, "who resumes (default: human:$USER)");
  c->callback([&] { run = [&] { return Resume(g, pause); }; });

  ServeFlags serve;
  c = app.add_subcommand("serve", "run a command for every intent sent to an address");
  c->add_option("--as", serve.as, "the agent address to serve")->required();
  c->add_option("--exec", serve.exec, "shell command; payload on stdin, result on stdout")
      ->required();
  c->add_option("--credit", serve.credit, "intents held at once (default 1)")
      ->check(CLI::Range(1, 1000));
  c->add_option("--heartbeat", serve.heartbeat, "heartbeat interval (default: lease / 3)");
  c->footer(
      "\nThe command runs once per intent (sh -c), with the payload as JSON on stdin and:\n"
      "  HANDOFF_INTENT_ID       the intent's id\n"
      "  HANDOFF_INTENT_TYPE     its type, e.g. intent.handoff.process.v1\n"
      "  HANDOFF_ATTEMPT         this delivery's number: 1, 2, ...\n"
      "  HANDOFF_CHECKPOINT      the latest checkpoint (JSON) of an earlier attempt; empty: none\n"
      "  HANDOFF_FROM_AGENT      the sender's address\n"
      "  HANDOFF_TO_AGENT        the address served (--as)\n"
      "  HANDOFF_CORRELATION_ID  the sender's correlation id; empty: none\n"
      "  HANDOFF_APPROVAL        the decision (JSON) on a question it asked with\n"
      "                          request-approval, when that brings the intent back\n"
      "  HANDOFF_SOCKET          the daemon, for handoffctl checkpoint / heartbeat /\n"
      "                          request-approval inside the command\n"
      "\nThe command's exit status:\n"
      "  0         the intent COMPLETED: stdout is the result (JSON, else a string; empty: null)\n"
      "  non-zero  the attempt failed, retryably: delivered again after the backoff, until\n"
      "            max_attempts is used up (then FAILED: a dead letter)\n"
      "A cancel stops the command (SIGTERM, then SIGKILL after 2 s) within a second; so does\n"
      "stopping serve, and then the intent is delivered again when its lease runs out.\n"
      "\nserve exits 0 when stopped by SIGTERM or SIGINT, 1 on an error (daemon not running,\n"
      "invalid address), 2 on a usage error.");
  c->callback([&] { run = [&] { return Serve(g, serve); }; });

  AgentOpFlags op;
  auto agent_op = [&](const char* name, const char* help) {
    auto* sub = app.add_subcommand(name, help);
    sub->add_option("id", op.id, "intent id")->required();
    sub->add_option("--attempt", op.attempt,
                    "the delivery attempt (default: $HANDOFF_ATTEMPT under serve, else current)");
    return sub;
  };
  c = agent_op("checkpoint", "save an intent's resume state (from inside an agent)");
  c->add_option("--state", op.state, "JSON, @file or -")->required();
  c->callback([&] { run = [&] { return Checkpoint(g, op); }; });
  c = agent_op("complete", "complete an intent with a result (from inside an agent)");
  c->add_option("--result", op.result, "JSON, @file or -");
  c->callback([&] { run = [&] { return Complete(g, op); }; });
  c = agent_op("fail", "fail an intent (from inside an agent)");
  c->add_option("--code", op.code, "machine-readable reason (default agent_error)");
  c->add_option("--message", op.message, "what went wrong");
  c->add_flag("--retryable", op.retryable, "the failure is transient");
  c->callback([&] { run = [&] { return Fail(g, op); }; });
  c = agent_op("heartbeat", "extend an intent's lease (from inside an agent)");
  c->callback([&] { run = [&] { return Heartbeat(g, op); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error: what is wrong, and where the help is.
    const auto parsed = app.get_subcommands();
    const std::string help =
        parsed.empty() ? "handoffctl --help" : "handoffctl " + parsed.front()->get_name() + " --help";
    std::fprintf(stderr, "handoffctl: usage: %s (see %s)\n", UsageError(app, e).c_str(),
                 help.c_str());
    return kExitUsage;
  }
  if (!InitLogging("info").ok()) return kExitError;
  return run ? run() : kExitUsage;
}

}  // namespace handoff::cli
