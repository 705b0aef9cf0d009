// handoffd as operators run it: no config at all, bad config, SIGTERM, a second daemon.

#include "support/daemon.h"

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "handoff/client.h"
#include "net/endpoint.h"

namespace handoff::testing {
namespace {

TEST_CASE("WithNoConfigHandoffdAndHandoffctlFindEachOtherWithNoFlags") {
  TempDir dir;
  // The same environment for both, as in one shell; the state dir is the test's own.
  std::map<std::string, std::string> env = {{"XDG_STATE_HOME", dir.Sub("state")},
                                            {"HANDOFF_SOCKET", ""}};
  const std::string default_endpoint =
      "ipc:///tmp/handoff-" + std::to_string(::getuid()) + "/handoffd.sock";
  if (net::IpcListening(default_endpoint)) {
    MESSAGE("a handoffd already listens on the default endpoint; not starting another");
    return;
  }
  Process daemon({HandoffdPath()}, env, dir.Sub("handoffd.log"));
  REQUIRE(WaitFor(
      [&] {
        return Run({HandoffctlPath(), "status"}, env).exit_code == 0;
      },
      std::chrono::seconds(15)));
  auto sent = Run({HandoffctlPath(), "send", "--to", "agent://acme/test/worker", "--type",
                   "intent.defaults.v1", "--payload", "{\"a\": 1}"},
                  env);
  CHECK(sent.exit_code == 0);
  CHECK(sent.out.size() == 37);
  auto status = Run({HandoffctlPath(), "--json", "status"}, env);
  REQUIRE(status.exit_code == 0);
  Json s = Json::parse(status.out);
  CHECK(s["agent_endpoint"] == default_endpoint);
  CHECK(s["data_dir"] == dir.Sub("state") + "/handoff");
  CHECK(s["fsync"] == true);
  CHECK(s["intents"]["SUBMITTED"] == 1);
  daemon.Signal(SIGTERM);
  CHECK(daemon.Wait(std::chrono::seconds(10)) == 0);
  // A clean stop leaves no socket behind for clients to find and get no answer from.
  CHECK_FALSE(std::filesystem::exists(default_endpoint.substr(6)));
}

TEST_CASE("ABadConfigStopsTheDaemonWithFileLineAndKey") {
  TempDir dir;
  std::string path = dir.Sub("bad.toml");
  std::ofstream(path) << "[node]\nname = \"node-a\"\nfsynk = true\n";
  auto r = Run({HandoffdPath(), "--config", path});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(path + ":3:1: unknown key 'fsynk' in [node]") != std::string::npos);

  auto missing = Run({HandoffdPath(), "--config", dir.Sub("nope.toml")});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("cannot read config file") != std::string::npos);

  std::string good = dir.Sub("good.toml");
  std::ofstream(good) << "[node]\nname = \"node-z\"\nfsync = false\npeer_security = \"none\"\n"
                      << "[[peers]]\nname = \"node-y\"\nendpoint = \"tcp://127.0.0.1:7401\"\n"
                      << "[[routes]]\nmatch = \"agent://acme/far/*\"\nnode = \"node-y\"\n";
  auto check = Run({HandoffdPath(), "--config", good, "--check-config"});
  CHECK(check.exit_code == 0);
  CHECK(check.out.find("name = node-z") != std::string::npos);
  CHECK(check.out.find("fsync = false") != std::string::npos);
  // What the links will be: peers and routes, as read.
  CHECK(check.out.find("peer_security = none") != std::string::npos);
  CHECK(check.out.find("peer node-y at tcp://127.0.0.1:7401, 0 key(s)") != std::string::npos);
  CHECK(check.out.find("route agent://acme/far/* -> node-y") != std::string::npos);
}

TEST_CASE("CheckConfigRefusesAMapSizeThisMachineCannotMap") {
  TempDir dir;
  auto config = [&](const std::string& map_size) {
    const std::string path = dir.Sub("map-" + map_size + ".toml");
    std::ofstream(path) << "[node]\nname = \"node-m\"\ndata_dir = \"" << dir.Sub("data")
                        << "\"\nmap_size = \"" << map_size << "\"\n";
    return path;
  };
  auto huge = Run({HandoffdPath(), "--config", config("100TiB"), "--check-config"});
  CHECK(huge.exit_code == 1);
  CHECK(huge.err.find(":4:12: [node] map_size") != std::string::npos);
  CHECK(huge.err.find("above 64TiB, more than a process may map") != std::string::npos);
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("skipped: an address-space limit leaves no room for AddressSanitizer's shadow memory");
#else
  // Under `ulimit -v 4GiB` an 8 GiB map cannot be reserved: --check-config says so, and so
  // does start-up, before anything is created.
  const std::string eight = config("8GiB");
  const std::string limited = "ulimit -v 4194304 && exec \"$0\" \"$@\"";
  auto check = Run({"/bin/sh", "-c", limited, HandoffdPath(), "--config", eight, "--check-config"});
  CHECK(check.exit_code == 1);
  CHECK(check.err.find("map_size: 8GiB does not fit this process's address-space limit "
                       "(ulimit -v: 4GiB") != std::string::npos);
  CHECK(check.err.find("lower map_size to at most 3GiB") != std::string::npos);
  auto start = Run({"/bin/sh", "-c", limited, HandoffdPath(), "--config", eight});
  CHECK(start.exit_code == 1);
  CHECK(start.err.find("map_size: 8GiB does not fit") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.Sub("data/handoff/data.mdb")));
#endif
  auto fine = Run({HandoffdPath(), "--config", config("8GiB"), "--check-config"});
  CHECK(fine.exit_code == 0);
}

TEST_CASE("KeygenAndShowPublicKeyGiveANodeItsKeyPair") {
  TempDir dir;
  // --keygen writes a new secret key file, 0600, and prints the public key only.
  const std::string file = dir.Sub("keys/node.key");
  REQUIRE(::mkdir(dir.Sub("keys").c_str(), 0700) == 0);
  auto keygen = Run({HandoffdPath(), "--keygen", file});
  REQUIRE(keygen.exit_code == 0);
  const std::string public_key = keygen.out.substr(0, keygen.out.find('\n'));
  CHECK(public_key.size() == 40);
  CHECK(keygen.out == public_key + "\n");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // It never overwrites a key.
  auto again = Run({HandoffdPath(), "--keygen", file});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("already exists") != std::string::npos);

  // --show-public-key reads only [node]: peers without keys (or with bad ones) do not matter.
  const std::string config = dir.Sub("node.toml");
  std::ofstream(config) << "[node]\nname = \"node-k\"\ndata_dir = \"" << dir.Sub("data")
                        << "\"\nsecret_key_file = \"" << file
                        << "\"\n[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:1\"\n";
  auto shown = Run({HandoffdPath(), "--config", config, "--show-public-key"});
  CHECK(shown.exit_code == 0);
  CHECK(shown.out == public_key + "\n");
  // Without secret_key_file it creates the pair in the data directory, once.
  const std::string fresh = dir.Sub("fresh.toml");
  std::ofstream(fresh) << "[node]\nname = \"node-f\"\ndata_dir = \"" << dir.Sub("fresh-data")
                       << "\"\n";
  auto first = Run({HandoffdPath(), "--config", fresh, "--show-public-key"});
  auto second = Run({HandoffdPath(), "--config", fresh, "--show-public-key"});
  CHECK(first.exit_code == 0);
  CHECK(first.out.size() == 41);
  CHECK(second.out == first.out);
  REQUIRE(::stat(dir.Sub("fresh-data/node.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::ifstream key_file(dir.Sub("fresh-data/node.key"));
  std::stringstream key_text;
  key_text << key_file.rdbuf();
  CHECK(key_text.str().find(first.out.substr(0, 40)) != std::string::npos);  // in a comment

  // A key file others may read is refused, saying how to fix it.
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  auto loose = Run({HandoffdPath(), "--config", config, "--show-public-key"});
  CHECK(loose.exit_code == 1);
  CHECK(loose.err.find("may be read by others (mode 0644); run: chmod 600 " + file) !=
        std::string::npos);
}

TEST_CASE("APeerWithoutAKeyStopsTheDaemonAtStartUpNamingIt") {
  TempDir dir;
  const std::string config = dir.Sub("node.toml");
  std::ofstream(config) << "[node]\nname = \"node-a\"\ndata_dir = \"" << dir.Sub("data")
                        << "\"\nagent_endpoint = \"ipc://" << dir.Sub("a.sock") << "\"\n"
                        << "[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:1\"\n";
  auto r = Run({HandoffdPath(), "--config", config});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(config + ":5:1: [[peers]] 'node-b' has no public_key") != std::string::npos);
  CHECK(r.err.find("--show-public-key") != std::string::npos);
}

TEST_CASE("TheAgentSocketCannotBeHijacked") {
  TempDir dir;
  auto config_for = [&](const std::string& name, const std::string& socket_dir) {
    const std::string path = dir.Sub(name + ".toml");
    std::ofstream(path) << "[node]\nname = \"" << name << "\"\ndata_dir = \"" << dir.Sub(name)
                        << "\"\nagent_endpoint = \"ipc://" << socket_dir << "/handoffd.sock\"\n";
    return path;
  };
  // A directory others may write: they could swap the socket for their own.
  const std::string open_dir = dir.Sub("open");
  REQUIRE(::mkdir(open_dir.c_str(), 0700) == 0);
  REQUIRE(::chmod(open_dir.c_str(), 0777) == 0);
  auto refused = Run({HandoffdPath(), "--config", config_for("node-o", open_dir)});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("the socket's directory " + open_dir +
                         " may be written by others "
                         "(mode 0777)") != std::string::npos);
  // A directory of another user's (needs root to make one).
  if (::geteuid() == 0) {
    const std::string theirs = dir.Sub("theirs");
    REQUIRE(::mkdir(theirs.c_str(), 0700) == 0);
    REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
    auto other = Run({HandoffdPath(), "--config", config_for("node-t", theirs)});
    CHECK(other.exit_code == 1);
    CHECK(other.err.find("belongs to uid 65534, not to this user") != std::string::npos);
  } else {
    MESSAGE("not root: the directory-of-another-user case is skipped (CI runs it as root)");
  }
  // Under umask 0 the socket is still the owner's alone.
  const mode_t old_mask = ::umask(0);
  Daemon daemon(dir, "node-u");
  daemon.Start();
  ::umask(old_mask);
  struct stat st {};
  REQUIRE(::stat(net::IpcPath(daemon.endpoint()).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("SigtermStopsCleanlyAndASecondDaemonIsRefused") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();

  // Same data directory, other endpoint: the lock refuses it.
  std::string other = dir.Sub("other.toml");
  std::ofstream(other) << "[node]\nname = \"node-a\"\ndata_dir = \"" << daemon.data_dir()
                       << "\"\nagent_endpoint = \"ipc://" << dir.Sub("other.sock") << "\"\n";
  auto second = Run({HandoffdPath(), "--config", other});
  CHECK(second.exit_code == 1);
  CHECK(second.err.find("in use by another handoffd") != std::string::npos);

  // Same endpoint, other data directory: refused, and the first keeps its socket.
  std::string same = dir.Sub("same.toml");
  std::ofstream(same) << "[node]\nname = \"node-a\"\ndata_dir = \"" << dir.Sub("d2")
                      << "\"\nagent_endpoint = \"" << daemon.endpoint() << "\"\n";
  auto third = Run({HandoffdPath(), "--config", same});
  CHECK(third.exit_code == 1);
  CHECK(third.err.find("already listening") != std::string::npos);
  auto client = daemon.Connect();
  CHECK(client->NodeStatus().ok());

  CHECK(daemon.Stop() == 0);
  CHECK(daemon.Log().find("stopping") != std::string::npos);
}

TEST_CASE("AClientFacingAStalledOrVanishedDaemonGetsAClearErrorInBoundedTime") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  ClientOptions options = daemon.client_options();
  options.request_timeout = std::chrono::seconds(1);
  auto client = Client::Connect(options);
  REQUIRE(client.ok());
  SendRequest req;
  req.to_agent = "agent://acme/test/worker";
  req.intent_type = "intent.stall.v1";
  auto receipt = (*client)->Send(req);
  REQUIRE(receipt.ok());

  daemon.Signal(SIGSTOP);
  auto start = std::chrono::steady_clock::now();
  auto got = (*client)->Get(receipt->intent_id);
  CHECK(got.status().IsUnavailable());
  CHECK(got.status().message().find("did not answer") != std::string::npos);
  auto waited = (*client)->Wait(receipt->intent_id, std::chrono::hours(1));
  CHECK(waited.status().IsUnavailable());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
  daemon.Signal(SIGCONT);

  // The same client works again once the daemon answers.
  REQUIRE(
      WaitFor([&] { return (*client)->Get(receipt->intent_id).ok(); }, std::chrono::seconds(10)));
  daemon.Kill();
  start = std::chrono::steady_clock::now();
  CHECK((*client)->Get(receipt->intent_id).status().IsUnavailable());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(Client::Connect(options).status().IsUnavailable());
}

TEST_CASE("AClientStartedTogetherWithTheDaemonWaitsForItToBind") {
  TempDir dir;
  Daemon daemon(dir);  // writes the config; started by hand below, as `handoffd &` would be
  Process started({HandoffdPath(), "--config", daemon.config_path()}, {}, dir.Sub("d.log"));
  // At once, with no polling of our own: the client gives a starting daemon a moment.
  CommandResult status = daemon.Ctl({"status"});
  CHECK_MESSAGE(status.exit_code == 0, status.err);
  started.Signal(SIGTERM);
  CHECK(started.Wait(std::chrono::seconds(10)) == 0);
  // With no daemon at all the answer comes within the grace, not after a request timeout.
  const auto before = std::chrono::steady_clock::now();
  CommandResult none = daemon.Ctl({"status"});
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("handoffd is not running") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));
}

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.data(), path.size());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    timeval timeout{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~NotifySocket() { ::close(fd_); }
  // Everything received so far, appended to `all`.
  void Drain(std::string* all) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof(buf), 0)) > 0) {
      all->append(buf, static_cast<size_t>(n));
      all->push_back('\n');
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST_CASE("UnderSystemdTheDaemonSaysReadyFeedsTheWatchdogAndSaysStopping") {
  TempDir dir;
  NotifySocket notify(dir.Sub("notify.sock"));
  Daemon daemon(dir);
  daemon.SetEnv({{"NOTIFY_SOCKET", dir.Sub("notify.sock")}, {"WATCHDOG_USEC", "200000"}});
  daemon.Start();
  std::string said;
  REQUIRE(WaitFor(
      [&] {
        notify.Drain(&said);
        return Occurrences(said, "WATCHDOG=1") >= 3;
      },
      std::chrono::seconds(10)));
  CHECK(said.find("READY=1") != std::string::npos);
  CHECK(said.find("READY=1") < said.find("WATCHDOG=1"));
  CHECK(said.find("STATUS=serving " + daemon.endpoint()) != std::string::npos);
  CHECK(daemon.Stop() == 0);
  notify.Drain(&said);
  CHECK(said.find("STOPPING=1") != std::string::npos);
}

TEST_CASE("AgentSocketGroupLetsThatGroupInAndTellsOthersWhichGroupToJoin") {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
    MESSAGE("needs root and setpriv to act as another user: skipped (CI runs it as root)");
    return;
  }
  const struct group* daemon_group = ::getgrnam("daemon");
  if (daemon_group == nullptr) {
    MESSAGE("no group 'daemon' on this host: skipped");
    return;
  }
  const gid_t gid = daemon_group->gr_gid;
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);  // others may pass, not list
  const std::string socket_dir = dir.Sub("run");
  const std::string endpoint = "ipc://" + socket_dir + "/handoffd.sock";
  const std::string config = dir.Sub("grouped.toml");
  std::ofstream(config) << "[node]\nname = \"node-g\"\ndata_dir = \"" << dir.Sub("data")
                        << "\"\nagent_endpoint = \"" << endpoint
                        << "\"\nagent_socket_group = \"daemon\"\n";
  Process daemon({HandoffdPath(), "--config", config}, {}, dir.Sub("g.log"));
  REQUIRE(WaitFor([&] { return net::IpcListening(endpoint); }, std::chrono::seconds(15)));
  struct stat st {};
  REQUIRE(::stat(socket_dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0770);
  CHECK(st.st_gid == gid);
  // The socket listens (ZeroMQ binds it) a moment before the daemon gives it its mode and
  // group; meanwhile its mode is stricter (0755: only the owner may connect).
  const std::string socket_file = socket_dir + "/handoffd.sock";
  CHECK(WaitFor(
      [&] {
        return ::stat(socket_file.c_str(), &st) == 0 && (st.st_mode & 0777) == 0660 &&
               st.st_gid == gid;
      },
      std::chrono::seconds(10)));
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(st.st_gid == gid);
  // The stream socket beside it, made before it, the same.
  REQUIRE(::stat((socket_file + ".stream").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(st.st_gid == gid);

  // handoffctl, where user nobody can run it.
  const std::string ctl = dir.Sub("handoffctl");
  std::filesystem::copy_file(HandoffctlPath(), ctl);
  REQUIRE(::chmod(ctl.c_str(), 0755) == 0);
  const std::map<std::string, std::string> env = {{"HANDOFF_SOCKET", endpoint}};
  auto as_nobody = [&](const std::string& groups) {
    return Run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                groups.empty() ? "--clear-groups" : "--groups=" + groups, ctl, "status"},
               env);
  };
  CommandResult refused = as_nobody("");
  CHECK(refused.exit_code == 1);
  CHECK_MESSAGE(refused.err.find("permission denied on " + socket_dir + "/handoffd.sock") !=
                    std::string::npos,
                refused.err);
  CHECK(refused.err.find("add this user to group daemon") != std::string::npos);
  CHECK(refused.err.find("not running") == std::string::npos);
  CommandResult member = as_nobody(std::to_string(gid));
  CHECK_MESSAGE(member.exit_code == 0, member.err);
  CHECK(member.out.find("node-g") != std::string::npos);
  daemon.Signal(SIGTERM);
  CHECK(daemon.Wait(std::chrono::seconds(10)) == 0);

  // A group that does not exist stops the daemon at start-up, naming it.
  std::ofstream(config) << "[node]\nname = \"node-g\"\ndata_dir = \"" << dir.Sub("data")
                        << "\"\nagent_endpoint = \"" << endpoint
                        << "\"\nagent_socket_group = \"no-such-group-here\"\n";
  CommandResult bad = Run({HandoffdPath(), "--config", config, "--check-config"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("no group named 'no-such-group-here'") != std::string::npos);
}

TEST_CASE("LogFormatJsonWritesOneObjectPerLineWhateverTheTextHolds") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "log_format = \"json\"");
  daemon.Start();
  // Text from a client, with a quote, a backslash and a newline, reaches the log.
  CommandResult paused =
      daemon.Ctl({"pause", "agent://acme/test/worker", "--reason", "bad \"deploy\"\\\nline two"});
  REQUIRE(paused.exit_code == 0);
  REQUIRE(daemon.Stop() == 0);
  std::istringstream log(daemon.Log());
  std::string line;
  int lines = 0;
  bool started = false, reason = false;
  while (std::getline(log, line)) {
    ++lines;
    INFO(line);
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE(j.is_object());
    CHECK(j["time"].get<std::string>().size() == 24);  // 2026-11-29T13:02:04.451Z
    CHECK(j["level"].is_string());
    const std::string msg = j["msg"].get<std::string>();
    started = started || msg.find("handoffd " HANDOFF_VERSION " node=node-a") == 0;
    reason = reason || (msg.find("paused by") != std::string::npos &&
                        msg.find("bad \"deploy\"\\\nline two") != std::string::npos);
  }
  CHECK(lines >= 3);
  CHECK(started);
  CHECK(reason);
  // A format the daemon does not know stops it at start-up, naming the key.
  std::ofstream(dir.Sub("bad-format.toml")) << "[node]\nlog_format = \"xml\"\n";
  CommandResult bad = Run({HandoffdPath(), "--config", dir.Sub("bad-format.toml")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("log_format") != std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
