#include "config/config.h"

#include <toml++/toml.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "base/names.h"
#include "base/units.h"
#include "net/endpoint.h"

namespace handoff::config {
namespace {

// Where a value sits, for error messages: "handoffd.toml:3:12".
std::string Where(std::string_view source, const toml::source_region& region) {
  return std::string(source) + ":" + std::to_string(region.begin.line) + ":" +
         std::to_string(region.begin.column);
}

// One configuration key: how to read it into a DaemonConfig.
struct Directive {
  const char* table;
  const char* key;
  const char* expects;  // for messages: "a string", "a duration like \"30s\"", ...
  std::function<Status(const toml::node&, DaemonConfig&)> apply;
};

template <typename T>
std::optional<T> As(const toml::node& n) {
  return n.value_exact<T>();
}

Status NeedString(const toml::node& n, std::string* out) {
  auto v = As<std::string>(n);
  if (!v) return Status::InvalidArgument("");
  *out = *v;
  return Status::OK();
}

// Durations and sizes may be written as strings with units or as plain integers.
Result<int64_t> ReadDuration(const toml::node& n) {
  if (auto i = As<int64_t>(n)) {
    if (*i < 0) return Status::InvalidArgument("must not be negative");
    return *i * 1000;
  }
  if (auto s = As<std::string>(n)) return ParseDurationMs(*s);
  return Status::InvalidArgument("");
}

Result<uint64_t> ReadSize(const toml::node& n) {
  if (auto i = As<int64_t>(n)) {
    if (*i < 0) return Status::InvalidArgument("must not be negative");
    return static_cast<uint64_t>(*i);
  }
  if (auto s = As<std::string>(n)) return ParseByteSize(*s);
  return Status::InvalidArgument("");
}

const std::vector<Directive>& Directives() {
  static const std::vector<Directive> kDirectives = {
      {"node", "name", "a string",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_RETURN_IF_ERROR(NeedString(n, &c.node.name));
         return ValidateNodeName(c.node.name);
       }},
      {"node", "data_dir", "a string",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_RETURN_IF_ERROR(NeedString(n, &c.node.data_dir));
         if (c.node.data_dir.empty()) return Status::InvalidArgument("must not be empty");
         return Status::OK();
       }},
      {"node", "agent_endpoint", "a string like \"ipc:///run/handoff/handoffd.sock\"",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_RETURN_IF_ERROR(NeedString(n, &c.node.agent_endpoint));
         return net::ValidateEndpoint(c.node.agent_endpoint);
       }},
      {"node", "log_level", "one of trace, debug, info, warn, error, off",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_RETURN_IF_ERROR(NeedString(n, &c.log_level));
         for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
           if (c.log_level == level) return Status::OK();
         }
         return Status::InvalidArgument("unknown level '" + c.log_level + "'");
       }},
      {"node", "fsync", "true or false",
       [](const toml::node& n, DaemonConfig& c) {
         auto v = As<bool>(n);
         if (!v) return Status::InvalidArgument("");
         c.node.fsync = *v;
         return Status::OK();
       }},
      {"node", "map_size", "a size like \"1GiB\"",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_ASSIGN_OR_RETURN(c.node.map_size, ReadSize(n));
         if (c.node.map_size < (uint64_t{1} << 20)) return Status::InvalidArgument("below 1MiB");
         return Status::OK();
       }},
      {"node", "max_payload_bytes", "a size like \"1MiB\"",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_ASSIGN_OR_RETURN(c.node.max_payload_bytes, ReadSize(n));
         if (c.node.max_payload_bytes < 1024 || c.node.max_payload_bytes > (uint64_t{64} << 20)) {
           return Status::InvalidArgument("must be between 1KiB and 64MiB");
         }
         return Status::OK();
       }},
      {"node", "max_batch", "an integer from 1 to 65536",
       [](const toml::node& n, DaemonConfig& c) {
         auto v = As<int64_t>(n);
         if (!v || *v < 1 || *v > 65536) return Status::InvalidArgument("");
         c.node.max_batch = static_cast<uint32_t>(*v);
         return Status::OK();
       }},
      {"node", "default_lease", "a duration like \"30s\"",
       [](const toml::node& n, DaemonConfig& c) {
         HANDOFF_ASSIGN_OR_RETURN(c.node.default_lease_ms, ReadDuration(n));
         if (c.node.default_lease_ms < 100 || c.node.default_lease_ms > 86'400'000) {
           return Status::InvalidArgument("must be between 100ms and 24h");
         }
         return Status::OK();
       }},
  };
  return kDirectives;
}

Status ApplyTable(std::string_view source, const std::string& name, const toml::table& table,
                  DaemonConfig& config) {
  for (auto&& [key, value] : table) {
    const Directive* directive = nullptr;
    for (const Directive& d : Directives()) {
      if (name == d.table && key.str() == d.key) directive = &d;
    }
    if (directive == nullptr) {
      std::string known;
      for (const Directive& d : Directives()) {
        if (name == d.table) known += std::string(known.empty() ? "" : ", ") + d.key;
      }
      return Status::InvalidArgument(Where(source, key.source()) + ": unknown key '" +
                                     std::string(key.str()) + "' in [" + name +
                                     "] (known: " + known + ")");
    }
    Status s = directive->apply(value, config);
    if (!s.ok()) {
      std::string msg = Where(source, value.source()) + ": [" + name + "] " + directive->key +
                        " must be " + directive->expects;
      if (!s.message().empty()) msg += ": " + s.message();
      return Status::InvalidArgument(msg);
    }
  }
  return Status::OK();
}

}  // namespace

Result<DaemonConfig> Parse(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(Where(source, e.source()) + ": " + std::string(e.description()));
  }
  DaemonConfig config;
  for (auto&& [key, value] : root) {
    const std::string name(key.str());
    const toml::table* table = value.as_table();
    bool known = false;
    for (const Directive& d : Directives()) known = known || name == d.table;
    if (!known) {
      return Status::InvalidArgument(Where(source, key.source()) + ": unknown " +
                                     (table ? "table [" + name + "]" : "key '" + name + "'") +
                                     " (known tables: [node])");
    }
    if (table == nullptr) {
      return Status::InvalidArgument(Where(source, key.source()) + ": '" + name +
                                     "' must be a table, written [" + name + "]");
    }
    HANDOFF_RETURN_IF_ERROR(ApplyTable(source, name, *table, config));
  }
  return config;
}

Result<DaemonConfig> LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

}  // namespace handoff::config
