// handoffctl's commands for operators: status, health, agents, pause and resume.

#include <cstdio>
#include <string>

#include "base/clock.h"
#include "cli/commands.h"
#include "cli/render.h"

namespace handoff::cli {

int NodeStatus(const Global& g) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto status = (*client)->NodeStatus();
  if (!status.ok()) return Error(status.status());
  if (g.json) {
    PrintJson(*status);
  } else {
    Print(StatusText(*status));
  }
  return kExitOk;
}

int Health(const Global& g) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto status = (*client)->NodeStatus();
  if (!status.ok()) return Error(status.status());
  const bool accepting = status->value("accepting_sends", false);
  if (g.json) {
    PrintJson(Json{{"ok", accepting},
                   {"node", status->value("node", "")},
                   {"accepting_sends", accepting},
                   {"store_error", status->value("store_error", "")}});
  } else if (accepting) {
    Print("ok: node " + status->value("node", "") + " answers and accepts sends\n");
  }
  if (accepting) return kExitOk;
  std::fprintf(stderr, "handoffctl: node %s answers but does not accept sends: %s\n",
               status->value("node", "").c_str(),
               status->contains("store_error")
                   ? (*status)["store_error"].get<std::string>().c_str()
                   : "the store is full (purge ended intents or raise map_size)");
  return kExitError;
}

int Agents(const Global& g) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto reply = (*client)->Agents();
  if (!reply.ok()) return Error(reply.status());
  const int64_t now = SystemClock::Instance().NowMs();
  if (g.json) {
    PrintJson(AgentsJson(*reply, now));
  } else {
    Print(AgentsText(*reply, now));
  }
  return kExitOk;
}

int Pause(const Global& g, const PauseFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto reply = (*client)->Pause(f.address, f.reason, DecidedBy(f.actor));
  if (!reply.ok()) return Error(reply.status());
  if (g.json) {
    PrintJson(*reply);
  } else if (reply->contains("forwarded_to")) {
    Print("pause of " + f.address + " sent to node " + (*reply)["forwarded_to"].get<std::string>() +
          ", which hosts it\n");
  } else {
    Print(std::string(reply->value("changed", false) ? "paused " : "already paused: ") + f.address +
          " (intents for it queue until `handoffctl resume " + f.address + "`)\n");
  }
  return kExitOk;
}

int Resume(const Global& g, const PauseFlags& f) {
  auto client = Connect(g);
  if (!client.ok()) return Error(client.status());
  auto reply = (*client)->Resume(f.address, DecidedBy(f.actor));
  if (!reply.ok()) return Error(reply.status());
  if (g.json) {
    PrintJson(*reply);
  } else if (reply->contains("forwarded_to")) {
    Print("resume of " + f.address + " sent to node " +
          (*reply)["forwarded_to"].get<std::string>() + ", which hosts it\n");
  } else {
    Print(std::string(reply->value("changed", false) ? "resumed " : "not paused: ") + f.address +
          "\n");
  }
  return kExitOk;
}

}  // namespace handoff::cli
