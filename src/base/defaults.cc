#include "base/defaults.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>

namespace handoff {
namespace {

std::string PerUserTmp() { return "/tmp/handoff-" + std::to_string(::getuid()); }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::string DefaultAgentEndpoint() {
  std::string from_env = Env(kSocketEnv);
  if (!from_env.empty()) return from_env;
  return "ipc://" + PerUserTmp() + "/handoffd.sock";
}

std::string DefaultDataDir() {
  std::string state = Env("XDG_STATE_HOME");
  if (!state.empty()) return state + "/handoff";
  std::string home = Env("HOME");
  if (!home.empty()) return home + "/.local/state/handoff";
  return PerUserTmp() + "/data";
}

std::string DefaultNodeName() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "local";
  std::string name;
  for (const char* p = host; *p && name.size() < 63; ++p) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    name.push_back(ok ? c : '-');
  }
  return name;
}

}  // namespace handoff
