#include "config/config.h"

#include <toml++/toml.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <vector>

#include "base/names.h"
#include "base/units.h"
#include "net/curve_keys.h"
#include "net/endpoint.h"
#include "node/limits.h"
#include "node/metrics.h"

namespace handoff::config {
namespace {

// Where a value sits, for error messages: "handoffd.toml:3:12".
std::string Where(std::string_view source, const toml::source_region& region) {
  return std::string(source) + ":" + std::to_string(region.begin.line) + ":" +
         std::to_string(region.begin.column);
}

// What a directive writes into: the config, plus the [[peers]] or [[routes]] entry being read.
struct Target {
  DaemonConfig& config;
  node::PeerOptions* peer = nullptr;
  node::RouteOptions* route = nullptr;
};

// One configuration key, declared once: where it lives, what it expects, how to apply it.
struct Directive {
  const char* table;  // "node", "peers" or "routes"
  const char* key;
  const char* expects;  // for messages: "a string", "a duration like \"30s\"", ...
  bool required;        // within its table (only [[peers]] and [[routes]] have required keys)
  std::function<Status(const toml::node&, Target&)> apply;
};

Status ReadString(const toml::node& n, std::string* out) {
  auto v = n.value_exact<std::string>();
  if (!v) return Status::InvalidArgument("");
  *out = *v;
  return Status::OK();
}

// Durations and sizes may be written as strings with units or as plain integers.
Result<int64_t> ReadDuration(const toml::node& n) {
  if (auto i = n.value_exact<int64_t>()) {
    if (*i < 0) return Status::InvalidArgument("must not be negative");
    // Seconds to milliseconds must not overflow (a huge value once wrapped to 30 s).
    if (*i > INT64_MAX / 1000) return Status::InvalidArgument("too long");
    return *i * 1000;
  }
  if (auto s = n.value_exact<std::string>()) return ParseDurationMs(*s);
  return Status::InvalidArgument("");
}

Result<uint64_t> ReadSize(const toml::node& n) {
  if (auto i = n.value_exact<int64_t>()) {
    if (*i < 0) return Status::InvalidArgument("must not be negative");
    return static_cast<uint64_t>(*i);
  }
  if (auto s = n.value_exact<std::string>()) return ParseByteSize(*s);
  return Status::InvalidArgument("");
}

Status DurationBetween(const toml::node& n, int64_t* out, int64_t min_ms, int64_t max_ms,
                       const char* range) {
  HANDOFF_ASSIGN_OR_RETURN(*out, ReadDuration(n));
  if (*out < min_ms || *out > max_ms)
    return Status::InvalidArgument(std::string("must be ") + range);
  return Status::OK();
}

// An integer key in [min, max]; anything else is refused with the key's expected form.
Status IntegerBetween(const toml::node& n, uint32_t* out, int64_t min, int64_t max) {
  auto v = n.value_exact<int64_t>();
  if (!v || *v < min || *v > max) return Status::InvalidArgument("");
  *out = static_cast<uint32_t>(*v);
  return Status::OK();
}

Status ValidateRoutePattern(const std::string& pattern) {
  if (pattern.rfind("agent://", 0) != 0) {
    return Status::InvalidArgument("'" + pattern + "' does not start with agent://");
  }
  for (char c : pattern.substr(8)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/' || c == '*';
    if (!ok)
      return Status::InvalidArgument("'" + pattern +
                                     "' has a character other than a-z 0-9 . _ - / *");
  }
  return Status::OK();
}

const std::vector<Directive>& Directives() {
  static const std::vector<Directive> kDirectives = {
      {"node", "name", "a string", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.node.name));
         return ValidateNodeName(t.config.node.name);
       }},
      {"node", "data_dir", "a string", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.node.data_dir));
         if (t.config.node.data_dir.empty()) return Status::InvalidArgument("must not be empty");
         return Status::OK();
       }},
      {"node", "agent_endpoint", "an endpoint like \"ipc:///run/handoff/handoffd.sock\"", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.node.agent_endpoint));
         return net::ValidateEndpoint(t.config.node.agent_endpoint);
       }},
      {"node", "peer_endpoint", "an endpoint like \"tcp://0.0.0.0:7400\"", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.node.peer_endpoint));
         return net::ValidateEndpoint(t.config.node.peer_endpoint);
       }},
      {"node", "log_level", "one of trace, debug, info, warn, error, off", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.log_level));
         for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
           if (t.config.log_level == level) return Status::OK();
         }
         return Status::InvalidArgument("unknown level '" + t.config.log_level + "'");
       }},
      {"node", "log_format", "\"text\" or \"json\"", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.log_format));
         if (t.config.log_format == "text" || t.config.log_format == "json") return Status::OK();
         return Status::InvalidArgument("unknown format '" + t.config.log_format + "'");
       }},
      {"node", "fsync", "true or false", false,
       [](const toml::node& n, Target& t) {
         auto v = n.value_exact<bool>();
         if (!v) return Status::InvalidArgument("");
         t.config.node.fsync = *v;
         return Status::OK();
       }},
      {"node", "map_size", "a size like \"1GiB\"", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_ASSIGN_OR_RETURN(t.config.node.map_size, ReadSize(n));
         if (t.config.node.map_size < (uint64_t{1} << 20)) {
           return Status::InvalidArgument("below 1MiB");
         }
         if (t.config.node.map_size > (uint64_t{64} << 40)) {
           return Status::InvalidArgument("above 64TiB, more than a process may map");
         }
         return Status::OK();
       }},
      {"node", "max_payload_bytes", "a size like \"1MiB\"", false,
       [](const toml::node& n, Target& t) {
         uint64_t& v = t.config.node.max_payload_bytes;
         HANDOFF_ASSIGN_OR_RETURN(v, ReadSize(n));
         if (v < 1024 || v > (uint64_t{64} << 20)) {
           return Status::InvalidArgument("must be between 1KiB and 64MiB");
         }
         return Status::OK();
       }},
      {"node", "max_client_backlog", "a size like \"16MiB\"", false,
       [](const toml::node& n, Target& t) {
         uint64_t& v = t.config.node.max_client_backlog;
         HANDOFF_ASSIGN_OR_RETURN(v, ReadSize(n));
         if (v < (uint64_t{64} << 10) || v > (uint64_t{4} << 30)) {
           return Status::InvalidArgument("must be between 64KiB and 4GiB");
         }
         return Status::OK();
       }},
      {"node", "max_total_client_backlog", "a size like \"256MiB\"", false,
       [](const toml::node& n, Target& t) {
         uint64_t& v = t.config.node.max_total_client_backlog;
         HANDOFF_ASSIGN_OR_RETURN(v, ReadSize(n));
         if (v < (uint64_t{1} << 20) || v > (uint64_t{64} << 30)) {
           return Status::InvalidArgument("must be between 1MiB and 64GiB");
         }
         return Status::OK();
       }},
      {"node", "metrics_endpoint", "host:port, like \"127.0.0.1:9464\"", false,
       [](const toml::node& n, Target& t) {
         auto v = n.value_exact<std::string>();
         if (!v) return Status::InvalidArgument("");
         std::string host;
         int port = 0;
         HANDOFF_RETURN_IF_ERROR(node::ParseHostPort(*v, &host, &port));
         t.config.node.metrics_endpoint = *v;
         return Status::OK();
       }},
      {"node", "agent_socket_group", "a group name, like \"handoff\"", false,
       [](const toml::node& n, Target& t) {
         auto v = n.value_exact<std::string>();
         if (!v || v->empty() || v->size() > 64) return Status::InvalidArgument("");
         t.config.node.agent_socket_group = *v;
         return Status::OK();
       }},
      {"node", "agent_stream", "true or false", false,
       [](const toml::node& n, Target& t) {
         auto v = n.value_exact<bool>();
         if (!v) return Status::InvalidArgument("");
         t.config.node.agent_stream = *v;
         return Status::OK();
       }},
      {"node", "max_batch", "an integer from 1 to 65536", false,
       [](const toml::node& n, Target& t) {
         return IntegerBetween(n, &t.config.node.max_batch, 1, 65536);
       }},
      {"node", "busy_poll_us", "an integer from 0 to 10000", false,
       [](const toml::node& n, Target& t) {
         return IntegerBetween(n, &t.config.node.busy_poll_us, 0, node::kMaxBusyPollUs);
       }},
      {"node", "default_lease", "a duration like \"30s\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.default_lease_ms, node::kMinLeaseMs,
                                node::kMaxLeaseMs, "between 100ms and 24h");
       }},
      {"node", "receiver_timeout", "a duration like \"30s\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.receiver_timeout_ms, 1000, 3600 * 1000,
                                "between 1s and 1h");
       }},
      {"node", "max_attempts", "an integer from 0 (unlimited) to 1000000", false,
       [](const toml::node& n, Target& t) {
         return IntegerBetween(n, &t.config.node.max_attempts, 0, node::kMaxAttemptsLimit);
       }},
      {"node", "retry_initial", "a duration like \"1s\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.retry_initial_ms, 0, node::kMaxRetryInitialMs,
                                "between 0 and 24h");
       }},
      {"node", "retry_multiplier", "a number from 1 to 100", false,
       [](const toml::node& n, Target& t) {
         auto v = n.value<double>();
         // Written so that nan, which fails every comparison, is refused too.
         if (!v || !(*v >= 1.0 && *v <= node::kMaxRetryMultiplier)) {
           return Status::InvalidArgument("");
         }
         t.config.node.retry_multiplier = *v;
         return Status::OK();
       }},
      {"node", "retry_max", "a duration like \"1m\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.retry_max_ms, 0, node::kMaxRetryMaxMs,
                                "between 0 and 7d");
       }},
      {"node", "idempotency_ttl", "a duration like \"24h\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.idempotency_ttl_ms, 1000, 365LL * 86'400'000,
                                "between 1s and 365d");
       }},
      {"node", "retention", "a duration like \"7d\" (\"0s\": keep ended intents forever)", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.retention_ms, 0, 3650LL * 86'400'000,
                                "between 0 (forever) and 3650d");
       }},
      {"node", "update_delay", "a duration like \"50ms\" (\"0s\": every change at once)", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.update_delay_ms, 0, 60'000, "between 0 and 1m");
       }},
      {"node", "peer_heartbeat", "a duration like \"1s\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.peer_heartbeat_ms, 50, 60'000,
                                "between 50ms and 1m");
       }},
      {"node", "retransmit_initial", "a duration like \"200ms\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.retransmit_initial_ms, 10, 60'000,
                                "between 10ms and 1m");
       }},
      {"node", "retransmit_max", "a duration like \"5s\"", false,
       [](const toml::node& n, Target& t) {
         return DurationBetween(n, &t.config.node.retransmit_max_ms, 10, 600'000,
                                "between 10ms and 10m");
       }},
      {"node", "peer_security", "\"curve\" or \"none\"", false,
       [](const toml::node& n, Target& t) {
         std::string v;
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &v));
         if (v == "curve") {
           t.config.node.peer_security = node::PeerSecurity::kCurve;
         } else if (v == "none") {
           t.config.node.peer_security = node::PeerSecurity::kNone;
         } else {
           return Status::InvalidArgument("unknown value '" + v + "'");
         }
         return Status::OK();
       }},
      {"node", "secret_key_file", "a path to a file written by `handoffd --keygen FILE`", false,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.config.node.secret_key_file));
         if (t.config.node.secret_key_file.empty()) return Status::InvalidArgument("empty");
         return Status::OK();
       }},
      {"peers", "name", "a node name", true,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.peer->name));
         return ValidateNodeName(t.peer->name);
       }},
      {"peers", "endpoint", "an endpoint like \"tcp://10.0.0.2:7400\"", true,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.peer->endpoint));
         return net::ValidateEndpoint(t.peer->endpoint);
       }},
      {"peers", "public_key",
       "a CURVE public key (40 characters of Z85), or a list of them while the peer rotates its "
       "key",
       false,
       [](const toml::node& n, Target& t) {
         std::vector<std::string>& keys = t.peer->public_keys;
         if (const toml::array* list = n.as_array()) {
           if (list->empty() || list->size() > 4) {
             return Status::InvalidArgument("list 1 to 4 keys");
           }
           for (const toml::node& item : *list) {
             HANDOFF_RETURN_IF_ERROR(ReadString(item, &keys.emplace_back()));
           }
         } else {
           HANDOFF_RETURN_IF_ERROR(ReadString(n, &keys.emplace_back()));
         }
         for (size_t i = 0; i < keys.size(); ++i) {
           HANDOFF_RETURN_IF_ERROR(net::ValidateCurveKey(keys[i]));
           for (size_t j = 0; j < i; ++j) {
             if (keys[j] == keys[i]) return Status::InvalidArgument("a key is listed twice");
           }
         }
         return Status::OK();
       }},
      {"routes", "match", "an address pattern like \"agent://acme/prod/*\"", true,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.route->match));
         return ValidateRoutePattern(t.route->match);
       }},
      {"routes", "node", "a node name", true,
       [](const toml::node& n, Target& t) {
         HANDOFF_RETURN_IF_ERROR(ReadString(n, &t.route->node));
         return ValidateNodeName(t.route->node);
       }},
  };
  return kDirectives;
}

std::string Header(const std::string& table) {
  return table == "node" ? "[node]" : "[[" + table + "]]";
}

// Applies one table's keys; `where` locates the table itself for missing-key errors.
Status ApplyTable(std::string_view source, const std::string& name, const toml::table& table,
                  Target& target) {
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
                                     std::string(key.str()) + "' in " + Header(name) +
                                     " (known: " + known + ")");
    }
    Status s = directive->apply(value, target);
    if (!s.ok()) {
      std::string msg = Where(source, value.source()) + ": " + Header(name) + " " + directive->key +
                        " must be " + directive->expects;
      if (!s.message().empty()) msg += ": " + s.message();
      return Status::InvalidArgument(msg);
    }
  }
  for (const Directive& d : Directives()) {
    if (name == d.table && d.required && !table.contains(d.key)) {
      return Status::InvalidArgument(Where(source, table.source()) + ": " + Header(name) +
                                     " entry has no '" + d.key + "'");
    }
  }
  return Status::OK();
}

// Checks that need the whole file: unique peer names, routes to known nodes.
Status CrossCheck(std::string_view source, const DaemonConfig& c,
                  const std::vector<toml::source_region>& peer_at,
                  const std::vector<toml::source_region>& route_at) {
  std::map<std::string, size_t> seen;
  std::map<std::string, size_t> key_owner;
  for (size_t i = 0; i < c.node.peers.size(); ++i) {
    const node::PeerOptions& peer = c.node.peers[i];
    const std::string& name = peer.name;
    if (name == c.node.name) {
      return Status::InvalidArgument(Where(source, peer_at[i]) + ": [[peers]] name '" + name +
                                     "' is this node's own name");
    }
    auto [it, fresh] = seen.emplace(name, i);
    if (!fresh) {
      return Status::InvalidArgument(Where(source, peer_at[i]) + ": [[peers]] name '" + name +
                                     "' is used twice (first at " +
                                     Where(source, peer_at[it->second]) + ")");
    }
    if (c.node.peer_security == node::PeerSecurity::kCurve && peer.public_keys.empty()) {
      return Status::InvalidArgument(
          Where(source, peer_at[i]) + ": [[peers]] '" + name +
          "' has no public_key, and peer_security = \"curve\" (the default) admits a peer only "
          "by its key. Run `handoffd --config <its config> --show-public-key` on node " +
          name +
          " and add public_key = \"<that key>\" here (or set peer_security = \"none\" "
          "on every node of a trusted network)");
    }
    for (const std::string& key : peer.public_keys) {
      auto [owner, first_use] = key_owner.emplace(key, i);
      if (!first_use && owner->second != i) {
        return Status::InvalidArgument(
            Where(source, peer_at[i]) + ": [[peers]] '" + name + "' has the same public_key as '" +
            c.node.peers[owner->second].name + "': a key names one node");
      }
    }
  }
  for (size_t i = 0; i < c.node.routes.size(); ++i) {
    const std::string& node = c.node.routes[i].node;
    if (node != c.node.name && seen.count(node) == 0) {
      return Status::InvalidArgument(Where(source, route_at[i]) + ": [[routes]] node '" + node +
                                     "' is not a peer of this node (add a [[peers]] entry named '" +
                                     node + "')");
    }
  }
  return Status::OK();
}

}  // namespace

std::vector<std::string> KnownKeys() {
  std::vector<std::string> keys;
  for (const Directive& d : Directives()) keys.push_back(std::string(d.table) + "." + d.key);
  return keys;
}

Result<DaemonConfig> Parse(std::string_view text, std::string_view source, Scope scope) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(Where(source, e.source()) + ": " + std::string(e.description()));
  }
  DaemonConfig config;
  std::vector<toml::source_region> peer_at, route_at;
  for (auto&& [key, value] : root) {
    const std::string name(key.str());
    if (name == "node") {
      const toml::table* table = value.as_table();
      if (table == nullptr) {
        return Status::InvalidArgument(Where(source, key.source()) +
                                       ": 'node' must be a table, written [node]");
      }
      Target target{config};
      HANDOFF_RETURN_IF_ERROR(ApplyTable(source, name, *table, target));
    } else if (scope == Scope::kNodeOnly) {
      continue;
    } else if (name == "peers" || name == "routes") {
      const toml::array* array = value.as_array();
      if (array == nullptr || !array->is_array_of_tables()) {
        return Status::InvalidArgument(Where(source, key.source()) + ": '" + name +
                                       "' must be written as [[" + name + "]] entries");
      }
      for (const toml::node& element : *array) {
        Target target{config};
        if (name == "peers") {
          target.peer = &config.node.peers.emplace_back();
          peer_at.push_back(element.source());
        } else {
          target.route = &config.node.routes.emplace_back();
          route_at.push_back(element.source());
        }
        HANDOFF_RETURN_IF_ERROR(ApplyTable(source, name, *element.as_table(), target));
      }
    } else {
      return Status::InvalidArgument(
          Where(source, key.source()) + ": unknown " +
          (value.is_table() ? "table [" + name + "]" : "key '" + name + "'") +
          " (known: [node], [[peers]], [[routes]])");
    }
  }
  if (scope == Scope::kAll) {
    HANDOFF_RETURN_IF_ERROR(CrossCheck(source, config, peer_at, route_at));
  }
  return config;
}

Result<DaemonConfig> LoadFile(const std::string& path, Scope scope) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path, scope);
}

}  // namespace handoff::config
