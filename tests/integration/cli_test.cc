// handoffctl as users script it: flags, JSON fields, exit codes, one-line errors.

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "handoff/intent.h"
#include "support/daemon.h"

namespace handoff::testing {
namespace {

constexpr const char* kTo = "agent://acme/test/worker";

std::string Line(const std::string& s) {
  std::string out = s;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Json ParseOut(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return Json::parse(r.out);
}

// Checks the shape of a failed command: non-zero exit, nothing on stdout, one line on stderr
// that mentions `part`.
void CheckOneLineError(const CommandResult& r, const std::string& part, int code = 1) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK(r.out.empty());
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.rfind("handoffctl: ", 0) == 0);
  CHECK(r.err.find(part) != std::string::npos);
}

class CliFixture {
 public:
  CliFixture() : daemon_(dir_) { daemon_.Start(); }
  Daemon& daemon() { return daemon_; }
  const TempDir& dir() const { return dir_; }
  CommandResult Ctl(const std::vector<std::string>& args, const std::string& input = {}) {
    return daemon_.Ctl(args, input);
  }
  std::string Send(const std::string& payload = "{}") {
    auto r = Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", payload});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return Line(r.out);
  }

 private:
  TempDir dir_;
  Daemon daemon_;
};

TEST_CASE("SendPrintsTheIntentIdAndGetShowsTheRecord") {
  CliFixture f;
  std::string id = f.Send("{\"records\": 3}");
  CHECK(id.size() == 36);

  Json sent = ParseOut(f.Ctl({"--json", "send", "--to", kTo, "--type", "intent.cli.v1"}));
  CHECK(sent["intent_id"].get<std::string>().size() == 36);
  CHECK(sent["status"] == "SUBMITTED");

  Json got = ParseOut(f.Ctl({"--json", "get", id}));
  for (const char* key :
       {"intent_id", "intent_type", "from_agent", "to_agent", "status", "delivery_attempt",
        "payload", "checkpoint", "result", "error", "created_at", "updated_at", "seq"}) {
    CHECK_MESSAGE(got.contains(key), key);
  }
  CHECK(got["intent_id"] == id);
  CHECK(got["intent_type"] == "intent.cli.v1");
  CHECK(got["to_agent"] == kTo);
  CHECK(got["status"] == "SUBMITTED");
  CHECK(got["delivery_attempt"] == 0);
  CHECK(got["payload"] == Json{{"records", 3}});
  CHECK(got["checkpoint"].is_null());
  CHECK(got["result"].is_null());
  CHECK(got["error"].is_null());
  CHECK(got["seq"] == 2);

  auto text = f.Ctl({"get", id});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("SUBMITTED") != std::string::npos);

  // --json may also follow the command.
  Json again = ParseOut(f.Ctl({"get", id, "--json"}));
  CHECK(again["intent_id"] == id);
}

TEST_CASE("SendAcceptsDurationsAndPayloadFromStdin") {
  CliFixture f;
  for (auto [text, ms] : std::vector<std::pair<std::string, int64_t>>{
           {"250ms", 250}, {"2s", 2000}, {"5m", 300000}, {"1h", 3600000}}) {
    Json sent = ParseOut(
        f.Ctl({"--json", "send", "--to", kTo, "--type", "intent.cli.v1", "--lease", text}));
    Json got = ParseOut(f.Ctl({"--json", "get", sent["intent_id"]}));
    CHECK(got["lease_ms"] == ms);
  }
  Json sent = ParseOut(f.Ctl({"--json", "send", "--to", kTo, "--type", "intent.cli.v1", "--payload",
                              "-", "--from", "agent://acme/test/sender"},
                             "{\"from\": \"stdin\"}"));
  Json got = ParseOut(f.Ctl({"--json", "get", sent["intent_id"]}));
  CHECK(got["payload"] == Json{{"from", "stdin"}});
  CHECK(got["from_agent"] == "agent://acme/test/sender");
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--lease", "soon"}),
                    "invalid duration");
}

TEST_CASE("BadInputGetsAOneLineErrorAndANonZeroExit") {
  CliFixture f;
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "{oops"}),
                    "not valid JSON");
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "[1]"}),
                    "JSON object");
  CheckOneLineError(f.Ctl({"send", "--to", "agent://Acme/x", "--type", "intent.cli.v1"}),
                    "invalid agent address");
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "cli"}), "invalid intent type");
  CheckOneLineError(f.Ctl({"get", "01a20b67-dfc4-7000-9c02-2173baa0aecf"}), "not_found");
  CheckOneLineError(f.Ctl({"get", "not-an-id"}), "malformed intent id");
  CheckOneLineError(f.Ctl({"list", "--status", "DONE"}), "unknown status");
  // Input that crashed handoffctl or came back as garbage: deep nesting (100,000 levels: it
  // overflowed the stack), bytes that are not UTF-8, binary noise on stdin.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "-"}, deep),
                    "nested more than 64 levels deep");
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "-"},
                          "\xff\xfe{\"a\":1}"),
                    "not valid JSON");
  std::string noise;
  for (int i = 0; i < 100000; ++i) noise.push_back(static_cast<char>((i * 7919) % 256));
  auto noisy = f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "-"}, noise);
  CheckOneLineError(noisy, "--payload");
  for (char c : noisy.err) CHECK(((c >= 0x20 && c < 0x7f) || c == '\n'));
  // A file without end is read only as far as the bound, and a missing one is named.
  CheckOneLineError(
      f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "@/dev/zero"}),
      "--payload from /dev/zero is larger than 128MiB");
  CheckOneLineError(
      f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "@/nonexistent.json"}),
      "cannot read --payload file /nonexistent.json");
  // Well-formed JSON whose strings are not UTF-8.
  CheckOneLineError(f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "-"},
                          "{\"a\": \"caf\xe9\"}"),
                    "not valid JSON");
  // Nothing was stored by any of them.
  Json all = ParseOut(f.Ctl({"--json", "list"}));
  CHECK(all.empty());
  // Usage errors exit 2; a mistyped command is named, with the closest one.
  // Each is one line on stderr, nothing on stdout.
  auto usage = f.Ctl({"send", "--type", "intent.cli.v1"});
  CHECK(usage.exit_code == 2);
  CHECK(usage.out.empty());
  CHECK(usage.err == "handoffctl: usage: --to is required (see handoffctl send --help)\n");
  CHECK(f.Ctl({"frobnicate"}).exit_code == 2);
  auto typo = f.Ctl({"stauts"});
  CHECK(typo.exit_code == 2);
  CHECK(typo.err ==
        "handoffctl: usage: unknown command 'stauts'; did you mean 'status'? (see handoffctl "
        "--help)\n");
  CHECK(f.Ctl({"frobnicate"}).err ==
        "handoffctl: usage: unknown command 'frobnicate' (see handoffctl --help)\n");
  // serve's help says what its command gets and what its exit status means.
  auto serve_help = f.Ctl({"serve", "--help"});
  CHECK(serve_help.exit_code == 0);
  for (const char* var :
       {"HANDOFF_INTENT_ID", "HANDOFF_INTENT_TYPE", "HANDOFF_ATTEMPT", "HANDOFF_CHECKPOINT",
        "HANDOFF_FROM_AGENT", "HANDOFF_TO_AGENT", "HANDOFF_CORRELATION_ID", "HANDOFF_APPROVAL",
        "HANDOFF_SOCKET", "exit status", "0         the intent COMPLETED", "non-zero"}) {
    CHECK_MESSAGE(serve_help.out.find(var) != std::string::npos, var);
  }
  auto pause_typo = f.Ctl({"pasue", "agent://acme/test/worker"});
  CHECK(pause_typo.err.find("did you mean 'pause'?") != std::string::npos);
}

TEST_CASE("ADaemonThatIsNotRunningGivesAClearErrorQuickly") {
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  auto r = Run({HandoffctlPath(), "--socket", "ipc://" + dir.Sub("nobody.sock"), "send", "--to",
                kTo, "--type", "intent.cli.v1"});
  CheckOneLineError(r, "not running");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));

  auto health = Run({HandoffctlPath(), "--socket", "ipc://" + dir.Sub("nobody.sock"), "health"});
  CHECK(health.exit_code == 1);
  CHECK(health.err.find("not running") != std::string::npos);

  // A stale socket file left by a killed daemon is no better.
  Daemon daemon(dir);
  daemon.Start();
  auto healthy = daemon.Ctl({"health"});
  CHECK(healthy.exit_code == 0);
  CHECK(healthy.out.find("ok: node node-a answers and accepts sends") != std::string::npos);
  daemon.Kill();
  r = daemon.Ctl({"status"});
  CheckOneLineError(r, "not running");

  // HANDOFF_SOCKET is honoured when --socket is absent.
  r = Run({HandoffctlPath(), "status"}, {{"HANDOFF_SOCKET", "ipc://" + dir.Sub("other.sock")}});
  CheckOneLineError(r, "other.sock");
}

TEST_CASE("WaitExitCodesTellHowTheIntentEnded") {
  CliFixture f;
  // COMPLETED: 0, with the result on stdout.
  std::string done = f.Send();
  CHECK(f.Ctl({"complete", done, "--result", "{\"answer\": 42}"}).exit_code == 1);  // not leased
  auto serve =
      std::make_unique<Process>(std::vector<std::string>{HandoffctlPath(), "serve", "--as", kTo,
                                                         "--exec", "echo '{\"answer\": 42}'"},
                                f.daemon().Env(), f.dir().Sub("serve.log"));
  auto waited = f.Ctl({"wait", done, "--timeout", "20s"});
  CHECK(waited.exit_code == 0);
  CHECK(Json::parse(waited.out) == Json{{"answer", 42}});
  Json record = ParseOut(f.Ctl({"--json", "wait", done}));
  CHECK(record["status"] == "COMPLETED");
  CHECK(record["result"] == Json{{"answer", 42}});
  serve.reset();

  // CANCELED: 4.
  std::string canceled = f.Send();
  auto c = f.Ctl({"cancel", canceled, "--reason", "not needed"});
  CHECK(c.exit_code == 0);
  CHECK(f.Ctl({"wait", canceled}).exit_code == 4);
  CheckOneLineError(f.Ctl({"cancel", canceled}), "already ended");

  // FAILED: 3.
  serve = std::make_unique<Process>(
      std::vector<std::string>{HandoffctlPath(), "serve", "--as", kTo, "--exec", "exit 7"},
      f.daemon().Env(), f.dir().Sub("serve2.log"));
  auto sent_failing =
      f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--max-attempts", "1"});
  REQUIRE(sent_failing.exit_code == 0);
  std::string failed = Line(sent_failing.out);
  CHECK(f.Ctl({"wait", failed, "--timeout", "20s"}).exit_code == 3);
  serve.reset();

  // Still running when the wait gives up: 6.
  std::string pending = f.Send();
  auto slow = f.Ctl({"wait", pending, "--timeout", "300ms"});
  CHECK(slow.exit_code == 6);
  CHECK(slow.err.find("still") != std::string::npos);

  // send --wait combines both.
  serve = std::make_unique<Process>(
      std::vector<std::string>{HandoffctlPath(), "serve", "--as", kTo, "--exec", "cat"},
      f.daemon().Env(), f.dir().Sub("serve3.log"));
  Json echoed = ParseOut(f.Ctl({"--json", "send", "--to", kTo, "--type", "intent.cli.v1",
                                "--payload", "{\"x\": 1}", "--wait", "--timeout", "20s"}));
  CHECK(echoed["status"] == "COMPLETED");
  CHECK(echoed["result"] == Json{{"x", 1}});
  // Without --json: one line on stdout, the result; the id on stderr.
  auto plain = f.Ctl({"send", "--to", kTo, "--type", "intent.cli.v1", "--payload", "{\"y\": 2}",
                      "--wait", "--timeout", "20s"});
  CHECK(plain.exit_code == 0);
  CHECK(plain.out == "{\"y\":2}\n");
  CHECK(plain.err.find("handoffctl: stored intent ") == 0);
}

TEST_CASE("EventsListAndStatusShowTheLifecycle") {
  CliFixture f;
  std::string a = f.Send();
  std::string b = f.Send();
  CHECK(f.Ctl({"cancel", b}).exit_code == 0);

  Json events = ParseOut(f.Ctl({"--json", "events", b}));
  REQUIRE(events.size() == 3);
  CHECK(events[0]["event_type"] == "intent.created");
  CHECK(events[1]["event_type"] == "intent.submitted");
  CHECK(events[2]["event_type"] == "intent.canceled");
  CHECK(events[2]["actor"] == "operator");
  CHECK(events[2]["node"] == "node-a");
  CHECK(events[2]["details"]["reason"].is_null());
  for (size_t i = 0; i < events.size(); ++i) CHECK(events[i]["seq"] == i + 1);
  Json since = ParseOut(f.Ctl({"--json", "events", b, "--since", "2"}));
  REQUIRE(since.size() == 1);
  CHECK(since[0]["seq"] == 3);

  Json canceled = ParseOut(f.Ctl({"--json", "list", "--status", "CANCELED"}));
  REQUIRE(canceled.size() == 1);
  CHECK(canceled[0]["intent_id"] == b);
  Json to = ParseOut(f.Ctl({"--json", "list", "--to", kTo, "--limit", "1"}));
  REQUIRE(to.size() == 1);
  CHECK(to[0]["intent_id"] == b);  // newest first
  Json submitted = ParseOut(f.Ctl({"--json", "list", "--status", "submitted"}));
  REQUIRE(submitted.size() == 1);
  CHECK(submitted[0]["intent_id"] == a);

  Json status = ParseOut(f.Ctl({"--json", "status"}));
  CHECK(status["node"] == "node-a");
  CHECK(status["intents"]["SUBMITTED"] == 1);
  CHECK(status["intents"]["CANCELED"] == 1);
  CHECK(status["fsync"] == true);
  // Every commit took some time (applying its writes and an fsync); the slowest at least the
  // average.
  REQUIRE(status["commits"].get<int64_t>() >= 3);
  CHECK(status["commit_us_avg"].get<int64_t>() > 0);
  CHECK(status["commit_us_max"].get<int64_t>() >= status["commit_us_avg"].get<int64_t>());
  auto text = f.Ctl({"status"});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("node-a") != std::string::npos);
  CHECK(text.out.find("ms each on average, slowest") != std::string::npos);
}

TEST_CASE("AuditShowsTheNodeWideTrailAndFollowsIt") {
  CliFixture f;
  std::string a = f.Send();
  std::string b = f.Send();
  CHECK(f.Ctl({"cancel", a, "--reason", "dup"}).exit_code == 0);
  Json all = ParseOut(f.Ctl({"--json", "audit"}));
  REQUIRE(all.size() == 5);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i]["audit_seq"] == i + 1);
  CHECK(all[0]["intent_id"] == a);
  CHECK(all[2]["intent_id"] == b);
  CHECK(all[4]["event_type"] == "intent.canceled");
  CHECK(all[4]["actor"] == "operator");
  CHECK(all[4]["details"]["reason"] == "dup");
  Json since = ParseOut(f.Ctl({"--json", "audit", "--since", "3"}));
  REQUIRE(since.size() == 2);
  CHECK(since[0]["audit_seq"] == 4);
  auto text = f.Ctl({"audit"});
  CHECK(text.out.find("intent.canceled") != std::string::npos);

  // --follow prints what happens from now on, one JSON object per line.
  const std::string out = f.dir().Sub("follow.out");
  Process follow({HandoffctlPath(), "--json", "audit", "--follow", "--since", "5"},
                 f.daemon().Env(), out);
  std::string c = f.Send();
  auto contents = [&] {
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  REQUIRE(
      WaitFor([&] { return contents().find(c) != std::string::npos; }, std::chrono::seconds(10)));
  std::istringstream lines(contents());
  std::string first;
  std::getline(lines, first);
  CHECK(Json::parse(first)["audit_seq"] == 6);
  CHECK(Json::parse(first)["event_type"] == "intent.created");
}

TEST_CASE("CheckpointFromInsideServeNeedsNoFlags") {
  CliFixture f;
  auto serve = std::make_unique<Process>(
      std::vector<std::string>{
          HandoffctlPath(), "serve", "--as", kTo, "--exec",
          "handoffctl checkpoint \"$HANDOFF_INTENT_ID\" --state '{\"step\": 1}'"
          " && echo '\"ok\"'"},
      f.daemon().Env(), f.dir().Sub("serve.log"));
  std::string id = f.Send();
  CHECK(f.Ctl({"wait", id, "--timeout", "20s"}).exit_code == 0);
  Json got = ParseOut(f.Ctl({"--json", "get", id}));
  CHECK(got["checkpoint"] == Json{{"step", 1}});
  CHECK(got["result"] == "ok");
}

}  // namespace
}  // namespace handoff::testing
