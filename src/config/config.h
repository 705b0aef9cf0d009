// handoffd's configuration file: TOML in, NodeOptions out.
//
// Every key is declared once in a table (config.cc) with its type and a validator; an unknown
// table or key, a value of the wrong type or a value out of range stops the daemon with an error
// that names the file, line, column and key. config/handoffd.toml documents every key.
//
// Thread safety: pure functions (they read the named file).

#ifndef HANDOFF_CONFIG_CONFIG_H_
#define HANDOFF_CONFIG_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "handoff/status.h"
#include "node/options.h"

namespace handoff::config {

struct DaemonConfig {
  node::NodeOptions node;
  // [node] log_level: trace, debug, info, warn, error or off. Default: info.
  std::string log_level = "info";
  // [node] log_format: "text" (timestamped lines) or "json" (one object per line: time,
  // level, msg). Default: text.
  std::string log_format = "text";
};

// Every key the parser knows, as "table.key" ("node.fsync", "peers.name", ...).
std::vector<std::string> KnownKeys();

// What to read: the whole file, or only [node] (what `handoffd --show-public-key` needs, so it
// works before the peers' keys are written into the file).
enum class Scope { kAll, kNodeOnly };

// Reads and parses the file at `path`.
Result<DaemonConfig> LoadFile(const std::string& path, Scope scope = Scope::kAll);
// Parses TOML text; `source` names it in error messages.
Result<DaemonConfig> Parse(std::string_view text, std::string_view source,
                           Scope scope = Scope::kAll);

}  // namespace handoff::config

#endif  // HANDOFF_CONFIG_CONFIG_H_
