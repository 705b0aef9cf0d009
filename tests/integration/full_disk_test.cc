// A disk that fills up under a running handoffd, for real: its data directory is a small
// tmpfs, filled to the last byte by another file. What must hold: a request the daemon could
// not store gets not_stored (and nothing of it exists, then or after a restart); every request
// it acknowledged survives a SIGKILL; `status` says accepting_sends false while the disk
// refuses and true once it takes writes again; an agent whose result the disk refused keeps
// its lease and reports it again until it is stored, so the work is not redone.
//
// Mounting needs root (CAP_SYS_ADMIN); without it the test says so and skips. The other tests
// make chosen flushes fail (support/fault_inject.c): a batch withdrawn, a daemon that stops
// rather than guess, and a link whose failed commit lost the deletes of its outbox trim.

#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "handoff/agent.h"
#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/cluster.h"
#include "support/daemon.h"

namespace handoff::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kWorker = "agent://acme/test/worker";

// A tmpfs of `size` at `path`, unmounted when the test ends.
class SmallFilesystem {
 public:
  SmallFilesystem(std::string path, const std::string& size) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `path` until the file system has no room left.
void FillUp(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  const std::string block(64 << 10, 'f');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  std::fclose(f);
  // Whatever fits in less than a block, too.
  std::FILE* g = std::fopen((path + ".tail").c_str(), "wb");
  if (g != nullptr) {
    while (std::fputc('f', g) != EOF && std::fflush(g) == 0) {
    }
    std::fclose(g);
  }
}

template <typename Pred>
bool WaitFor(Pred pred, milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

// An intent id the client picks, numbered.
std::string ChosenId(int n) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "01a20b67-dfc4-7000-8000-%012d", n);
  return buf;
}

TEST_CASE("AFullDiskIsToldTruthfullyAndAFinishedResultIsKeptUntilTheDiskIsFreed") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "map_size = \"256MiB\"");
  SmallFilesystem fs(daemon.data_dir(), "48m");
  if (!fs.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs for the data directory (needs root): " << fs.error());
    return;
  }
  daemon.Start();
  auto client = daemon.Connect();

  // An intent an agent starts on while the disk still has room. Its handler waits for the
  // disk to fill before it returns its result.
  SendRequest work;
  work.to_agent = kWorker;
  work.intent_type = "intent.work.v1";
  work.lease = milliseconds(1000);
  auto x = client->Send(work);
  REQUIRE(x.ok());
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, go = false;
  AgentOptions options;
  options.client = daemon.client_options();
  options.address = kWorker;
  auto agent = Agent::Connect(options);
  REQUIRE(agent.ok());
  std::atomic<int> runs{0};
  std::thread agent_thread([&] {
    (void)(*agent)->Run([&](Task&) {
      ++runs;
      std::unique_lock<std::mutex> lock(mu);
      started = true;
      cv.notify_all();
      cv.wait_for(lock, seconds(60), [&] { return go; });
      return Outcome::Complete({{"done", true}});
    });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, seconds(20), [&] { return started; }));
  }

  // The disk fills. Sends go on until one is refused; each either was stored or was not.
  const std::string filler = daemon.data_dir() + "/filler";
  FillUp(filler);
  std::vector<std::string> stored, refused;
  SendRequest bulk;
  bulk.to_agent = "agent://acme/test/nobody";
  bulk.intent_type = "intent.bulk.v1";
  bulk.payload = {{"blob", std::string(8000, 'b')}};
  for (int i = 0; i < 20000 && refused.size() < 3; ++i) {
    bulk.intent_id = ChosenId(i);
    auto r = client->Send(bulk);
    if (r.ok()) {
      stored.push_back(bulk.intent_id);
      continue;
    }
    CAPTURE(r.status().ToString());
    REQUIRE(r.status().IsNotStored());
    CHECK(r.status().message().find("nothing of it took effect") != std::string::npos);
    refused.push_back(bulk.intent_id);
  }
  REQUIRE(refused.size() == 3);
  for (const std::string& id : refused) CHECK(client->Get(id).status().IsNotFound());
  auto status = client->NodeStatus();
  REQUIRE(status.ok());
  CHECK((*status)["accepting_sends"] == false);
  CHECK((*status)["store_error"].get<std::string>().find("No space left") != std::string::npos);

  // The agent finishes now: its result is refused, and it keeps the lease while it retries
  // (more than the lease's length goes by: without heartbeats it would be delivered again).
  const auto failed_before = (*status)["failed_commits"].get<uint64_t>();
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  // Reads are answered all along: one that lands in a failing batch is asked again.
  int status_errors = 0;
  CHECK(WaitFor(
      [&] {
        auto s = client->NodeStatus();
        if (!s.ok()) ++status_errors;
        return s.ok() && (*s)["failed_commits"].get<uint64_t>() >= failed_before + 8;
      },
      seconds(30)));
  CHECK(status_errors == 0);
  auto held = client->Get(x->intent_id);
  REQUIRE(held.ok());
  CHECK(held->status == IntentStatus::kInProgress);
  CHECK(held->delivery_attempt == 1);

  // The disk is freed: the result is stored, the store takes writes again, nothing redone.
  std::filesystem::remove(filler);
  std::filesystem::remove(filler + ".tail");
  auto done = client->Wait(x->intent_id, seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->result == Json{{"done", true}});
  CHECK(done->delivery_attempt == 1);
  CHECK(runs.load() == 1);
  CHECK(WaitFor(
      [&] {
        auto s = client->NodeStatus();
        return s.ok() && (*s)["accepting_sends"] == true && !s->contains("store_error");
      },
      seconds(10)));
  bulk.intent_id = ChosenId(100000);
  CHECK(client->Send(bulk).ok());
  (*agent)->Stop();
  agent_thread.join();

  // What was acknowledged survives a SIGKILL; what was refused never appears.
  client.reset();
  daemon.Kill();
  daemon.Start();
  client = daemon.Connect();
  for (const std::string& id : stored) {
    CAPTURE(id);
    CHECK(client->Get(id).ok());
  }
  for (const std::string& id : refused) CHECK(client->Get(id).status().IsNotFound());
  CHECK(client->Get(x->intent_id)->status == IntentStatus::kCompleted);
  CHECK(daemon.Log().find("No space left") != std::string::npos);
}

// A started daemon with the fault injector preloaded (support/fault_inject.c).
struct FaultyDaemon {
  explicit FaultyDaemon(const std::string& extra = "") : daemon(dir, "node-a", extra) {
    daemon.InjectFaults(control);
    daemon.Start();
  }
  // Of the next fdatasync calls on files ending with `suffix`, lets `skip` through, then
  // fails `fail`.
  void Fault(const std::string& suffix, int skip, int fail) const {
    std::ofstream(control) << suffix << " " << skip << " " << fail << "\n";
  }

  TempDir dir;
  const std::string control = dir.Sub("faults");
  Daemon daemon;
};

SendRequest Small(const std::string& id) {
  SendRequest req;
  req.to_agent = "agent://acme/test/nobody";
  req.intent_type = "intent.small.v1";
  req.intent_id = id;
  return req;
}

TEST_CASE("ALogRecordWhoseFlushFailedIsWithdrawnSoItNeverComesBack") {
  FaultyDaemon f;
  Daemon& daemon = f.daemon;
  auto client = daemon.Connect();
  REQUIRE(client->Send(Small(ChosenId(1))).ok());
  // The next flush of the write-ahead log fails: the send is told not_stored...
  f.Fault("/wal", 0, 1);
  auto failed = client->Send(Small(ChosenId(2)));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().IsNotStored());
  CHECK(failed.status().message().find("cannot flush") != std::string::npos);
  // ... and stays not stored across a crash right after: its record was withdrawn, so replay
  // does not find it (before, the record written before the failed flush came back).
  client.reset();
  daemon.Kill();
  daemon.InjectFaults("");
  daemon.Start();
  client = daemon.Connect();
  CHECK(client->Get(ChosenId(1)).ok());
  CHECK(client->Get(ChosenId(2)).status().IsNotFound());
  CHECK(client->Send(Small(ChosenId(3))).ok());
}

TEST_CASE("ALogRecordThatCannotBeWithdrawnStopsTheDaemonRatherThanAnswer") {
  FaultyDaemon f;
  Daemon& daemon = f.daemon;
  ClientOptions options = daemon.client_options();
  options.request_timeout = std::chrono::seconds(5);
  auto client = Client::Connect(options);
  REQUIRE(client.ok());
  // The flush fails and so does the one that would withdraw the record: whether the batch
  // took effect is unknown, so no answer goes out and the daemon stops.
  f.Fault("/wal", 0, 2);
  auto unknown = (*client)->Send(Small(ChosenId(1)));
  CHECK_FALSE(unknown.ok());
  CHECK_FALSE(unknown.status().IsNotStored());
  CHECK(WaitFor([&] { return !daemon.running(); }, seconds(20)));
  CHECK(daemon.Log().find("could not be withdrawn") != std::string::npos);
  // A restart replays what the log holds and serves again.
  daemon.InjectFaults("");
  daemon.Start();
  auto again = daemon.Connect();
  CHECK(again->Send(Small(ChosenId(2))).ok());
}

TEST_CASE("ABatchCommittedWhoseFlushFailedIsReportedStoredAndWritesWaitForAFlush") {
  // A payload larger than the 16 MiB log is committed to the data file on its own.
  FaultyDaemon f("max_payload_bytes = \"32MiB\"");
  Daemon& daemon = f.daemon;
  auto client = daemon.Connect();
  SendRequest big = Small(ChosenId(1));
  big.payload = {{"blob", std::string(20 << 20, 'b')}};
  // The commit's own flush (its data pages) goes through; the flush of its meta page fails.
  f.Fault("data.mdb", 1, 1);
  auto stored = client->Send(big);
  CAPTURE(stored.status().ToString());
  CHECK(stored.ok());  // it took effect: reporting it failed would be false
  auto status = client->NodeStatus();
  REQUIRE(status.ok());
  CHECK((*status)["accepting_sends"] == false);
  CHECK((*status)["store_error"].get<std::string>().find("Input/output error") !=
        std::string::npos);
  CHECK(daemon.Log().find("it is in effect") != std::string::npos);
  // The next write flushes first; that works now, and everything is stored.
  CHECK(client->Send(Small(ChosenId(2))).ok());
  CHECK(WaitFor(
      [&] {
        auto s = client->NodeStatus();
        return s.ok() && (*s)["accepting_sends"] == true;
      },
      seconds(10)));
  auto got = client->Get(ChosenId(1));
  REQUIRE(got.ok());
  CHECK(got->payload["blob"].get<std::string>().size() == (20u << 20));
}

TEST_CASE("OutboxEntriesWhoseTrimFailedWithItsCommitAreTrimmedByTheNextOne") {
  // node-a forwards to node-b and deletes each forwarded message from its outbox once node-b
  // acknowledges it, with the next turn it writes. When that turn's commit fails, the deletes
  // fail with it: the next trim must find them again, or they stay until a restart sends them
  // a second time.
  TempDir dir;
  const std::string control = dir.Sub("faults");
  const std::string remote = "agent://acme/remote/worker";
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-b", {"agent://acme/remote/*"}, ""}});
  Daemon& origin = cluster["node-a"];
  origin.InjectFaults(control);
  cluster.StartAll();
  cluster.WaitConnected();
  AgentPool agents(cluster["node-b"], remote, 1);
  auto client = origin.Connect();
  auto round_trip = [&](int64_t n) {
    auto done = client->SendAndWait(DoubleWork(n, remote, seconds(5)), seconds(60));
    REQUIRE(done.ok());
    CHECK(done->result["double"] == 2 * n);
  };
  round_trip(1);
  // The send's commit goes through; the next one, which applies node-b's first update about it
  // and trims the message node-b has acknowledged by then, fails. node-b sends the update again.
  std::ofstream(control) << "/wal 1 1\n";
  round_trip(2);
  CHECK(WaitFor(
      [&] {
        return origin.Log().find("a turn failed") != std::string::npos ||
               origin.Log().find("a commit failed") != std::string::npos;
      },
      seconds(10)));
  std::filesystem::remove(control);
  round_trip(3);  // its trim takes the one that failed too
  // Everything node-b acknowledged is gone from the outbox: a restart finds nothing to resend.
  client.reset();
  origin.Kill();
  origin.InjectFaults("");
  origin.Start();
  cluster.WaitConnected();
  CHECK(origin.Log().find("from an earlier run await acknowledgement") == std::string::npos);
  client = origin.Connect();
  round_trip(4);
}

}  // namespace
}  // namespace handoff::testing
