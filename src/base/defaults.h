// Defaults shared by handoffd and its clients, so that `handoffd &` followed by
// `handoffctl send ...` works in the same shell with no flags or config.
//
//   agent endpoint  $HANDOFF_SOCKET, else ipc:///tmp/handoff-<uid>/handoffd.sock
//   data directory  $XDG_STATE_HOME/handoff, else $HOME/.local/state/handoff,
//                   else /tmp/handoff-<uid>/data
//   node name       the host name, lowercased, with other characters turned into '-'
//
// Thread safety: read the environment; call from any thread.

#ifndef HANDOFF_BASE_DEFAULTS_H_
#define HANDOFF_BASE_DEFAULTS_H_

#include <string>

namespace handoff {

inline constexpr const char* kSocketEnv = "HANDOFF_SOCKET";

std::string DefaultAgentEndpoint();
std::string DefaultDataDir();
std::string DefaultNodeName();

}  // namespace handoff

#endif  // HANDOFF_BASE_DEFAULTS_H_
