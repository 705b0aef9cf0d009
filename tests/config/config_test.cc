// config/: TOML in, NodeOptions out, and precise errors.

#include "config/config.h"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "net/curve_keys.h"

namespace handoff::config {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string NewPublicKey() {
  auto pair = net::GenerateCurveKeyPair();
  REQUIRE(pair.ok());
  return pair->public_key;
}

// An example file with its "PASTE ..." placeholders filled in, as its comments say to.
Result<DaemonConfig> LoadExample(const std::string& name, const std::string& key) {
  const std::string path = HANDOFF_TEST_SOURCE_DIR "/config/" + name;
  const std::string text = Slurp(path);
  // Not std::regex_replace: a Z85 key may hold '$', which its format string reads.
  std::string filled = text;
  const std::regex placeholder("public_key = \"PASTE[^\"]*\"");
  for (std::smatch m; std::regex_search(filled, m, placeholder);) {
    filled.replace(m.position(0), m.length(0), "public_key = \"" + key + "\"");
  }
  REQUIRE(filled != text);
  return Parse(filled, path);
}

TEST_CASE("TheExamplesStopAtTheirPlaceholdersWithWhatToDo") {
  for (const char* name : {"handoffd.toml", "node-a.toml", "node-b.toml"}) {
    auto config = LoadFile(HANDOFF_TEST_SOURCE_DIR "/config/" + std::string(name));
    CAPTURE(name);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().find("public_key must be a CURVE public key") !=
          std::string::npos);
    CHECK(config.status().message().find("--show-public-key") != std::string::npos);
    // Only [node] is read to show the key, so the placeholders do not stand in its way.
    CHECK(LoadFile(HANDOFF_TEST_SOURCE_DIR "/config/" + std::string(name), Scope::kNodeOnly).ok());
  }
}

TEST_CASE("TheReadmesTwoHostExampleIsTheExampleFilesThemselves") {
  const std::string readme = Slurp(HANDOFF_TEST_SOURCE_DIR "/README.md");
  const size_t section = readme.find("## Two hosts");
  REQUIRE(section != std::string::npos);
  for (const char* name : {"node-a.toml", "node-b.toml"}) {
    CAPTURE(name);
    // The file without its comment lines, as the README shows it under "# config/<name>".
    std::istringstream file(Slurp(HANDOFF_TEST_SOURCE_DIR "/config/" + std::string(name)));
    std::string settings, line;
    while (std::getline(file, line)) {
      if (line.rfind('#', 0) != 0) settings += line + "\n";
    }
    while (!settings.empty() && settings.front() == '\n') settings.erase(0, 1);
    const std::string block = "```toml\n# config/" + std::string(name) + "\n" + settings + "```";
    CHECK(readme.find(block, section) != std::string::npos);
  }
  // The naming rules are there, in the words the errors use.
  for (const char* form : {"agent://<org>/<env>/<name>", "intent.<name>.v<N>"}) {
    CHECK(readme.find(form) != std::string::npos);
  }
  // And it starts them as the files' own comments say.
  CHECK(readme.find("handoffd --config node-a.toml --show-public-key", section) !=
        std::string::npos);
}

TEST_CASE("TheCommentedExampleConfigParses") {
  const std::string key = NewPublicKey();
  auto config = LoadExample("handoffd.toml", key);
  REQUIRE(config.ok());
  CHECK(config->node.peer_security == node::PeerSecurity::kCurve);
  CHECK(config->node.secret_key_file == "/etc/handoff/node-a.key");
  CHECK(config->node.peers.at(0).public_keys == std::vector<std::string>{key});
  CHECK(config->node.name == "node-a");
  CHECK(config->node.data_dir == "/var/lib/handoff");
  CHECK(config->node.agent_endpoint == "ipc:///run/handoff/handoffd.sock");
  CHECK(config->node.fsync);
  CHECK(config->node.map_size == (uint64_t{1} << 30));
  CHECK(config->node.max_payload_bytes == (uint64_t{1} << 20));
  CHECK(config->node.max_batch == 128);
  CHECK(config->node.busy_poll_us == 300);
  CHECK(config->node.default_lease_ms == 30'000);
  CHECK(config->log_level == "info");
  CHECK(config->node.peer_endpoint == "tcp://0.0.0.0:7400");
  CHECK(config->node.peer_heartbeat_ms == 1000);
  CHECK(config->node.retransmit_initial_ms == 200);
  CHECK(config->node.retransmit_max_ms == 5000);
  REQUIRE(config->node.peers.size() == 1);
  CHECK(config->node.peers[0].name == "node-b");
  REQUIRE(config->node.routes.size() == 1);
  CHECK(config->node.routes[0].node == "node-b");
}

TEST_CASE("TheCommentedExampleShowsEveryKey") {
  std::ifstream in(HANDOFF_TEST_SOURCE_DIR "/config/handoffd.toml");
  std::stringstream text;
  text << in.rdbuf();
  for (const std::string& key : KnownKeys()) {
    const std::string name = key.substr(key.find('.') + 1);
    CAPTURE(key);
    CHECK(text.str().find("\n" + name + " = ") != std::string::npos);
  }
}

TEST_CASE("TheTwoNodeExamplesParseAndPointAtEachOther") {
  auto a = LoadExample("node-a.toml", NewPublicKey());
  auto b = LoadExample("node-b.toml", NewPublicKey());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->node.peers.at(0).name == b->node.name);
  CHECK(b->node.peers.at(0).name == a->node.name);
  CHECK(a->node.peers.at(0).endpoint == b->node.peer_endpoint);
  CHECK(b->node.peers.at(0).endpoint == a->node.peer_endpoint);
}

TEST_CASE("EveryKeyIsReadAndMissingKeysKeepTheirDefaults") {
  auto config = Parse(R"(
[node]
name = "edge-1"
fsync = false
default_lease = "250ms"
max_payload_bytes = 4096
map_size = "64MiB"
retention = "2d"
)",
                      "test.toml");
  REQUIRE(config.ok());
  CHECK(config->node.name == "edge-1");
  CHECK_FALSE(config->node.fsync);
  CHECK(config->node.default_lease_ms == 250);
  CHECK(config->node.max_payload_bytes == 4096);
  CHECK(config->node.map_size == (uint64_t{64} << 20));
  CHECK(config->node.max_batch == 128);
  CHECK(config->node.retention_ms == 2LL * 86'400'000);
  CHECK(Parse("", "empty.toml").ok());
  CHECK(Parse("", "empty.toml")->node.retention_ms == 7LL * 86'400'000);
  CHECK(Parse("[node]\nretention = \"0s\"\n", "forever.toml")->node.retention_ms == 0);
  CHECK(Parse("", "empty.toml")->node.busy_poll_us == 300);
  CHECK(Parse("[node]\nbusy_poll_us = 0\n", "off.toml")->node.busy_poll_us == 0);
  CHECK(Parse("[node]\nbusy_poll_us = 10000\n", "most.toml")->node.busy_poll_us == 10000);
  CHECK(Parse("", "empty.toml")->node.update_delay_ms == 50);
  CHECK(Parse("[node]\nupdate_delay = \"0s\"\n", "off.toml")->node.update_delay_ms == 0);
  CHECK(Parse("[node]\nupdate_delay = \"1m\"\n", "most.toml")->node.update_delay_ms == 60'000);
}

void CheckError(const char* text, const char* where, const char* what) {
  auto config = Parse(text, "n.toml");
  CAPTURE(text);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().IsInvalidArgument());
  CHECK(config.status().message().find(where) != std::string::npos);
  CHECK(config.status().message().find(what) != std::string::npos);
}

TEST_CASE("BadConfigNamesTheFileLineAndKey") {
  CheckError("[node]\nnmae = \"x\"\n", "n.toml:2:1", "unknown key 'nmae'");
  CheckError("[node]\nfsync = \"yes\"\n", "n.toml:2:9", "[node] fsync must be true or false");
  CheckError("[node]\nname = \"Node A\"\n", "n.toml:2:8", "invalid node name");
  CheckError("[node]\nagent_endpoint = \"udp://x:1\"\n", "n.toml:2", "agent_endpoint");
  CheckError("[node]\ndefault_lease = \"forever\"\n", "n.toml:2", "invalid duration");
  CheckError("[node]\ndefault_lease = \"50ms\"\n", "n.toml:2", "between 100ms and 24h");
  CheckError("[node]\nmax_payload_bytes = \"1GiB\"\n", "n.toml:2", "64MiB");
  CheckError("[nodes]\nname = \"a\"\n", "n.toml:1", "unknown table [nodes]");
  CheckError("name = \"a\"\n", "n.toml:1", "unknown key 'name'");
  CheckError("[node]\nname = \n", "n.toml:2", "");
  CheckError("[node]\nmax_batch = 0\n", "n.toml:2", "max_batch");
  CheckError("[node]\nbusy_poll_us = 10001\n", "n.toml:2", "busy_poll_us");
  CheckError("[node]\nbusy_poll_us = -1\n", "n.toml:2", "busy_poll_us");
  CheckError("[node]\nupdate_delay = \"61s\"\n", "n.toml:2", "update_delay");
  CheckError("[node]\nupdate_delay = \"soon\"\n", "n.toml:2", "update_delay");
  CheckError("[node]\nbusy_poll_us = \"300us\"\n", "n.toml:2", "busy_poll_us");
  CheckError("[node]\nretention = \"-1d\"\n", "n.toml:2", "retention");
  CheckError("[node]\nretention = \"9999d\"\n", "n.toml:2", "3650d");
  CheckError("[node]\nretry_multiplier = nan\n", "n.toml:2", "retry_multiplier must be");
  CheckError("[node]\ndefault_lease = 9223372036854775807\n", "n.toml:2", "default_lease must be");
  CheckError("[node]\nretention = 9223372036854\n", "n.toml:2", "retention must be");
  CheckError("[node]\nretry_multiplier = inf\n", "n.toml:2", "retry_multiplier must be");
  // The keys added for bounded memory and metrics, at and past their ends.
  CheckError("[node]\nmax_client_backlog = \"1KiB\"\n", "n.toml:2", "between 64KiB and 4GiB");
  CheckError("[node]\nmax_client_backlog = \"99999999999999999999TiB\"\n", "n.toml:2", "too large");
  CheckError("[node]\nmax_total_client_backlog = \"65GiB\"\n", "n.toml:2",
             "between 1MiB and 64GiB");
  CheckError("[node]\nmetrics_endpoint = \"9464\"\n", "n.toml:2", "must be host:port");
  CheckError("[node]\nmetrics_endpoint = \"127.0.0.1:0\"\n", "n.toml:2", "1 to 65535");
  CheckError("[node]\nmetrics_endpoint = \"127.0.0.1:99999999999999999999\"\n", "n.toml:2",
             "1 to 65535");
  CheckError("[node]\nmetrics_endpoint = 9464\n", "n.toml:2", "metrics_endpoint must be");
  // The keys added for operators, at and past their ends.
  CheckError("[node]\nreceiver_timeout = \"999ms\"\n", "n.toml:2", "between 1s and 1h");
  CheckError("[node]\nreceiver_timeout = 9223372036854775807\n", "n.toml:2", "receiver_timeout");
  CheckError("[node]\nlog_format = \"xml\"\n", "n.toml:2", "log_format");
  CheckError("[node]\nagent_socket_group = \"\"\n", "n.toml:2", "agent_socket_group");
  CheckError(("[node]\nagent_socket_group = \"" + std::string(65, 'g') + "\"\n").c_str(),
             "n.toml:2", "agent_socket_group");
  auto operators =
      Parse("[node]\nreceiver_timeout = \"1h\"\nlog_format = \"json\"\nagent_socket_group = \"" +
                std::string(64, 'g') + "\"\n",
            "n.toml");
  REQUIRE(operators.ok());
  CHECK(operators->node.receiver_timeout_ms == 3600 * 1000);
  CHECK(operators->log_format == "json");
  auto bounds = Parse(
      "[node]\nmax_client_backlog = \"64KiB\"\nmax_total_client_backlog = "
      "\"64GiB\"\nmetrics_endpoint = \"[::1]:65535\"\n",
      "n.toml");
  REQUIRE(bounds.ok());
  CHECK(bounds->node.max_client_backlog == (uint64_t{64} << 10));
  CHECK(bounds->node.max_total_client_backlog == (uint64_t{64} << 30));
  CHECK(bounds->node.metrics_endpoint == "[::1]:65535");
}

TEST_CASE("PeersAndRoutesAreRead") {
  auto config = Parse(R"(
[node]
name = "node-a"
peer_endpoint = "tcp://0.0.0.0:7400"
peer_heartbeat = "500ms"

peer_security = "none"

[[peers]]
name = "node-b"
endpoint = "tcp://127.0.0.1:7401"

[[peers]]
name = "node-c"
endpoint = "tcp://127.0.0.1:7402"

[[routes]]
match = "agent://acme/prod/*"
node = "node-b"

[[routes]]
match = "agent://acme/lab/*"
node = "node-a"
)",
                      "two.toml");
  REQUIRE(config.ok());
  CHECK(config->node.peer_endpoint == "tcp://0.0.0.0:7400");
  CHECK(config->node.peer_heartbeat_ms == 500);
  REQUIRE(config->node.peers.size() == 2);
  CHECK(config->node.peers[1].name == "node-c");
  CHECK(config->node.peers[1].endpoint == "tcp://127.0.0.1:7402");
  REQUIRE(config->node.routes.size() == 2);
  CHECK(config->node.routes[0].match == "agent://acme/prod/*");
  CHECK(config->node.routes[0].node == "node-b");
  CHECK(config->node.routes[1].node == "node-a");  // its own name: local
}

TEST_CASE("PeerKeysAndSecurityAreRead") {
  const std::string b1 = NewPublicKey(), b2 = NewPublicKey(), c = NewPublicKey();
  auto config = Parse(
      "[node]\nname = \"node-a\"\nsecret_key_file = \"/keys/a.key\"\n"
      "[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:7401\"\n"
      "public_key = [\"" +
          b1 + "\", \"" + b2 +
          "\"]\n"
          "[[peers]]\nname = \"node-c\"\nendpoint = \"tcp://127.0.0.1:7402\"\n"
          "public_key = \"" +
          c + "\"\n",
      "keys.toml");
  REQUIRE(config.ok());
  CHECK(config->node.peer_security == node::PeerSecurity::kCurve);  // the default
  CHECK(config->node.secret_key_file == "/keys/a.key");
  CHECK(node::SecretKeyPath(config->node) == "/keys/a.key");
  CHECK(config->node.peers[0].public_keys == std::vector<std::string>{b1, b2});
  CHECK(config->node.peers[1].public_keys == std::vector<std::string>{c});
  auto defaults = Parse("[node]\ndata_dir = \"/d\"\n", "d.toml");
  REQUIRE(defaults.ok());
  CHECK(node::SecretKeyPath(defaults->node) == "/d/node.key");
  auto none = Parse(
      "[node]\npeer_security = \"none\"\n[[peers]]\nname = \"node-b\"\n"
      "endpoint = \"tcp://127.0.0.1:7401\"\n",
      "none.toml");
  REQUIRE(none.ok());
  CHECK(none->node.peer_security == node::PeerSecurity::kNone);
}

TEST_CASE("BadPeerKeysNameTheFileLineAndPeer") {
  const std::string key = NewPublicKey();
  const std::string head = "[node]\nname = \"node-a\"\n";
  const std::string peer_b = "[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:7401\"\n";
  // Under curve (the default), a peer without a key stops the daemon, naming it.
  CheckError((head + peer_b).c_str(), "n.toml:3:1",
             "[[peers]] 'node-b' has no public_key, and peer_security = \"curve\"");
  CheckError((head + peer_b + "public_key = \"short\"\n").c_str(), "n.toml:6:14",
             "5 characters, not 40");
  CheckError((head + peer_b + "public_key = \"" + std::string(40, '~') + "\"\n").c_str(),
             "n.toml:6:14", "not Z85");
  CheckError((head + peer_b + "public_key = []\n").c_str(), "n.toml:6:14", "list 1 to 4 keys");
  CheckError((head + peer_b + "public_key = [\"" + key + "\", \"" + NewPublicKey() + "\", \"" +
              NewPublicKey() + "\", \"" + NewPublicKey() + "\", \"" + NewPublicKey() + "\"]\n")
                 .c_str(),
             "n.toml:6:14", "list 1 to 4 keys");
  CheckError((head + peer_b + "public_key = [\"" + key + "\", \"" + key + "\"]\n").c_str(),
             "n.toml:6:14", "a key is listed twice");
  CheckError(
      (head + peer_b + "public_key = \"" + key +
       "\"\n[[peers]]\nname = \"node-c\"\nendpoint = \"tcp://c:1\"\npublic_key = \"" + key + "\"\n")
          .c_str(),
      "n.toml:7:1", "'node-c' has the same public_key as 'node-b'");
  CheckError("[node]\npeer_security = \"tls\"\n", "n.toml:2:17", "\"curve\" or \"none\"");
  CheckError("[node]\nsecret_key_file = \"\"\n", "n.toml:2:19", "secret_key_file");
}

TEST_CASE("BadPeerAndRouteConfigNamesTheFileLineAndKey") {
  CheckError((std::string("[node]\nname = \"node-a\"\npeer_security = \"none\"\n") +
              "[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:7401\"\n" +
              "[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:7401\"\n")
                 .c_str(),
             "n.toml:7:1", "[[peers]] name 'node-b' is used twice (first at n.toml:4:1)");
  CheckError("[node]\nname = \"node-a\"\n[[routes]]\nmatch = \"agent://x/*\"\nnode = \"node-q\"\n",
             "n.toml:3:1", "[[routes]] node 'node-q' is not a peer");
  CheckError("[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://nowhere\"\n", "n.toml:3:12",
             "[[peers]] endpoint must be");
  CheckError("[[peers]]\nname = \"node-b\"\n", "n.toml:1:1", "[[peers]] entry has no 'endpoint'");
  CheckError("[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://a:1\"\nport = 7\n", "n.toml:4:1",
             "unknown key 'port' in [[peers]]");
  CheckError("[[routes]]\nmatch = \"acme/*\"\nnode = \"x\"\n", "n.toml:2:9",
             "does not start with agent://");
  CheckError("[node]\nname = \"node-a\"\n[[peers]]\nname = \"node-a\"\nendpoint = \"tcp://a:1\"\n",
             "n.toml:3:1", "this node's own name");
  CheckError("[node]\npeer_endpoint = \"tcp://0.0.0.0\"\n", "n.toml:2", "peer_endpoint");
  CheckError("peers = 3\n", "n.toml:1:1", "[[peers]]");
}

TEST_CASE("AMissingFileIsNotFound") {
  CHECK(LoadFile("/nonexistent/handoffd.toml").status().IsNotFound());
}

}  // namespace
}  // namespace handoff::config
