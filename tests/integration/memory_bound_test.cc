// Memory bounded in bytes, against a real handoffd: a client that asks and never reads, and
// frames built to be as large or as many as the sockets allow, leave the daemon's resident
// size under a bound (docs/security.md lists the figures), and others are served meanwhile.

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "base/msgpack_io.h"
#include "handoff/client.h"
#include "support/cluster.h"
#include "support/daemon.h"
#include "wire/agent_protocol.h"

namespace handoff::testing {
namespace {

// The daemon's anonymous resident memory (heap, stacks, ZeroMQ's queues), from /proc: its
// resident size less the pages of files it maps, which for handoffd is the LMDB data file
// (those pages are the page cache's, and the kernel drops them under pressure).
uint64_t RssBytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) * 1024;
  }
  return 0;
}

// The bound every scenario here must stay under. Without the limits the first one took the
// daemon to 3.2 GB; the figures measured with them are in docs/security.md.
constexpr uint64_t kRssBound = uint64_t{600} << 20;

// AddressSanitizer keeps freed memory in quarantine (256 MiB) and is many times slower: there
// the scenarios run smaller, their figures are printed, and the bound is not asserted.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// The daemon's pid, as its status reports it.
int DaemonPid(Client& client) {
  auto status = client.NodeStatus();
  REQUIRE(status.ok());
  return (*status)["pid"].get<int>();
}

// A bare DEALER on the agent socket that queues whatever it is given (no high-water mark):
// a client that sends without reading.
zmq::socket_t RawDealer(zmq::context_t& context, const std::string& endpoint) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.connect(endpoint);
  return socket;
}

void CheckBound(uint64_t peak) {
  if (kSanitized) return;
  CHECK(peak < kRssBound);
}

TEST_CASE("AClientThatNeverReadsItsRepliesIsCutOffAndMemoryStaysBounded") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "max_client_backlog = \"8MiB\"");
  daemon.Start();
  auto client = daemon.Connect();
  // 300 intents: every `list` reply carries all of them, about 100 KB.
  SendRequest req;
  req.to_agent = "agent://acme/test/worker";
  req.intent_type = "intent.flood.v1";
  req.payload = {{"note", std::string(100, 'n')}};
  for (int i = 0; i < 300; ++i) REQUIRE(client->Send(req).ok());
  const int pid = DaemonPid(*client);

  // 20,000 list requests, none of whose replies is read.
  zmq::context_t context;
  zmq::socket_t flood = RawDealer(context, daemon.endpoint());
  uint64_t peak = 0;
  for (uint64_t rid = 1; rid <= 20000; ++rid) {
    wire::RequestBuilder b("list", rid);
    b.w().Field("limit", uint64_t{1000});
    const std::string frame = b.Finish();
    REQUIRE(flood.send(zmq::buffer(frame), zmq::send_flags::none));
    if (rid % 1000 == 0) peak = std::max(peak, RssBytes(pid));
  }
  // The daemon drops the flooder's requests once its backlog is full, and says so.
  uint64_t dropped = 0;
  for (int i = 0; i < 400 && dropped == 0; ++i) {
    auto s = client->NodeStatus();  // another client: served throughout
    REQUIRE(s.ok());
    dropped = (*s)["backlog_dropped_requests"].get<uint64_t>();
    CHECK((*s)["client_backlog_bytes"].get<uint64_t>() <= (uint64_t{8} << 20) + (1 << 20));
    peak = std::max(peak, RssBytes(pid));
    if (dropped == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(dropped > 0);
  for (int i = 0; i < 20; ++i) {
    peak = std::max(peak, RssBytes(pid));
    REQUIRE(client->NodeStatus().ok());
  }
  MESSAGE("daemon anonymous RSS peak during the unread-list flood: " << (peak >> 20) << " MiB");
  CheckBound(peak);
  CHECK(daemon.Log().find("leaves") != std::string::npos);
  CHECK(daemon.Log().find("max_client_backlog") != std::string::npos);

  // Once the flooder reads, it is served again.
  zmq::message_t reply;
  flood.set(zmq::sockopt::rcvtimeo, 2000);
  size_t replies = 0;
  while (flood.recv(reply, zmq::recv_flags::none)) ++replies;
  CHECK(replies > 0);
  CHECK(replies < 20000);
  wire::RequestBuilder again("hello", 99999);
  const std::string frame = again.Finish();
  REQUIRE(flood.send(zmq::buffer(frame), zmq::send_flags::none));
  flood.set(zmq::sockopt::rcvtimeo, 10000);
  REQUIRE(flood.recv(reply, zmq::recv_flags::none));
  auto decoded = wire::DecodeReply(reply.to_string_view());
  REQUIRE(decoded.ok());
  CHECK(decoded->rid == 99999);
  CHECK(decoded->status.ok());
  CHECK(daemon.running());
}

}  // namespace
}  // namespace handoff::testing

namespace handoff::testing {
namespace {

TEST_CASE("ALinkToAPausedPeerHoldsAtMostItsByteWindow") {
  TempDir dir;
  Cluster cluster(
      dir, {{"node-a", {}, "fsync = false"}, {"node-b", {"agent://acme/far/*"}, "fsync = false"}});
  cluster.StartAll();
  cluster.WaitConnected();
  auto client = cluster["node-a"].Connect();
  const int pid = DaemonPid(*client);
  auto peer = [&] {
    auto s = client->NodeStatus();
    INFO("status: " << s.status().ToString() << "\nnode-a log:\n" << cluster["node-a"].Log());
    REQUIRE(s.ok());
    return (*s)["peers"][0];
  };

  // node-b stops (SIGSTOP) while 300 intents of 900 KiB go to it: 264 MiB to forward.
  cluster["node-b"].Signal(SIGSTOP);
  SendRequest req;
  req.to_agent = "agent://acme/far/worker";
  req.intent_type = "intent.big.v1";
  req.payload = {{"blob", std::string(900 << 10, 'p')}};
  uint64_t peak = 0;
  for (int i = 0; i < 300; ++i) {
    REQUIRE(client->Send(req).ok());
    if (i % 20 == 0) peak = std::max(peak, RssBytes(pid));
  }
  // Several retransmission timeouts (100 ms doubling to 1 s) and the link's heartbeats pass:
  // at most the byte window is in flight, and no copies pile up behind it.
  const auto paused_until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  while (std::chrono::steady_clock::now() < paused_until) {
    const auto link = peer();
    CHECK(link["in_flight_bytes"].get<uint64_t>() <= (uint64_t{64} << 20) + (1 << 20));
    peak = std::max(peak, RssBytes(pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // node-b resumes: everything arrives, and the sender stays bounded meanwhile.
  cluster["node-b"].Signal(SIGCONT);
  bool drained = false;
  for (int i = 0; i < 1200 && !drained; ++i) {
    drained = peer()["outbox_depth"].get<uint64_t>() == 0;
    peak = std::max(peak, RssBytes(pid));
    if (!drained) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(drained);
  MESSAGE("sender anonymous RSS peak with its peer paused, then resumed: " << (peak >> 20)
                                                                           << " MiB");
  CheckBound(peak);
  auto far = cluster["node-b"].Connect();
  ListOptions all;
  all.limit = 1000;
  auto listed = far->List(all);
  REQUIRE(listed.ok());
  CHECK(listed->size() == 300);
}

}  // namespace
}  // namespace handoff::testing

namespace handoff::testing {
namespace {

// A msgpack array header of `n` entries (array32).
std::string ArrayHeader(uint32_t n) {
  return std::string{'\xdd', static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
}

TEST_CASE("FramesBuiltToBlowUpWhenDecodedOrToBeManyStayBounded") {
  TempDir dir;
  Daemon daemon(dir);  // max_payload_bytes 1 MiB: agent frames up to 3 MiB
  daemon.Start();
  auto client = daemon.Connect();
  const int pid = DaemonPid(*client);
  zmq::context_t context;
  zmq::socket_t raw = RawDealer(context, daemon.endpoint());
  uint64_t peak = 0;

  // The largest frame the socket takes, packed with empty arrays: three arrays of a million
  // (the most one container may hold), each entry one byte that decodes to an object. 100 of
  // them (10 under a sanitizer), none read back until the end.
  wire::RequestBuilder b("send", 1);
  b.w().Field("intent_type", "intent.bomb.v1");
  b.w().Field("to_agent", "agent://acme/test/worker");
  std::string payload = "\x83";  // a map of three
  for (char key : {'a', 'b', 'c'}) {
    payload += '\xa1';
    payload += key;
    payload += ArrayHeader((1 << 20) - 64);
    payload.append((size_t{1} << 20) - 64, '\x90');  // empty arrays
  }
  b.w().FieldRaw("payload", payload);
  const std::string bomb = b.Finish();
  REQUIRE(bomb.size() < (size_t{3} << 20));
  const int bombs = kSanitized ? 10 : 100;
  for (int i = 0; i < bombs; ++i) {
    REQUIRE(raw.send(zmq::buffer(bomb), zmq::send_flags::none));
    if (i % 10 == 0) peak = std::max(peak, RssBytes(pid));
  }
  raw.set(zmq::sockopt::rcvtimeo, 120000);
  for (int i = 0; i < bombs; ++i) {
    zmq::message_t reply;
    REQUIRE(raw.recv(reply, zmq::recv_flags::none));
    auto decoded = wire::DecodeReply(reply.to_string_view());
    REQUIRE(decoded.ok());
    // Refused by size (3 MiB of payload over a 1 MiB limit), never stored.
    CHECK(decoded->status.IsInvalidArgument());
    peak = std::max(peak, RssBytes(pid));
  }
  MESSAGE("anonymous RSS peak for "
          << bombs << " frames of 3 million empty arrays: " << (peak >> 20) << " MiB");
  CheckBound(peak);

  CHECK(daemon.running());
}

TEST_CASE("AMessageOfManyFramesIsRefusedAndFreed") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  const int pid = DaemonPid(*client);
  zmq::context_t context;
  zmq::socket_t raw = RawDealer(context, daemon.endpoint());
  raw.set(zmq::sockopt::rcvtimeo, 30000);
  // A 200-frame message of 1 MiB frames: ZeroMQ hands over a message only whole, so it is
  // buffered before anything can look at it (200 MiB here: frames are at most
  // 2 x max_payload_bytes + 1 MiB each, and ZeroMQ has no limit on their number); the daemon
  // refuses it, frees it, and goes on.
  uint64_t frames_peak = 0;
  const std::string frame(1 << 20, 'f');
  for (int i = 0; i < 200; ++i) {
    REQUIRE(raw.send(zmq::buffer(frame),
                     i + 1 < 200 ? zmq::send_flags::sndmore : zmq::send_flags::none));
  }
  zmq::message_t reply;
  REQUIRE(raw.recv(reply, zmq::recv_flags::none));
  auto refused = wire::DecodeReply(reply.to_string_view());
  REQUIRE(refused.ok());
  CHECK(refused->status.message().find("expected exactly one frame per message, got 200") !=
        std::string::npos);
  frames_peak = std::max(frames_peak, RssBytes(pid));
  MESSAGE("anonymous RSS after a 200-frame message of 1 MiB frames: " << (frames_peak >> 20)
                                                                      << " MiB");
  CheckBound(frames_peak);
  ListOptions all;
  auto listed = client->List(all);
  REQUIRE(listed.ok());
  CHECK(listed->empty());
  CHECK(daemon.running());
}

TEST_CASE("FiftyThousandShortLivedReceiversLeaveMemoryAndStatusBounded") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "receiver_timeout = \"1s\"");
  daemon.Start();
  auto client = daemon.Connect();
  const int pid = DaemonPid(*client);
  const uint64_t before = RssBytes(pid);
  // Each connection registers an address of its own, then closes without a word: ZeroMQ does
  // not tell the daemon, so only the receiver timeout can forget them.
  const int connections = kSanitized ? 5'000 : 50'000;
  zmq::context_t context;
  uint64_t peak = 0;
  for (int i = 0; i < connections; ++i) {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvtimeo, 10'000);
    socket.connect(daemon.endpoint());
    wire::RequestBuilder b("receive", 1);
    b.w().Field("address", "agent://acme/short/w" + std::to_string(i));
    b.w().Field("credit", uint64_t{4});
    const std::string frame = b.Finish();
    REQUIRE(socket.send(zmq::buffer(frame), zmq::send_flags::none));
    zmq::message_t reply;
    REQUIRE(socket.recv(reply, zmq::recv_flags::none));
    if (i % 5000 == 0) {
      peak = std::max(peak, RssBytes(pid));
      auto status = client->NodeStatus();  // bounded however many receive
      REQUIRE(status.ok());
      CHECK((*status)["receivers"].size() <= 100);
    }
  }
  // Every one of them is forgotten once silent for the timeout.
  uint64_t left = UINT64_MAX;
  CHECK(WaitFor(
      [&] {
        auto status = client->NodeStatus();
        if (!status.ok()) return false;
        left = (*status)["receivers_total"].get<uint64_t>();
        peak = std::max(peak, RssBytes(pid));
        return left == 0;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100)));
  CHECK(left == 0);
  auto agents = client->Agents();
  REQUIRE(agents.ok());
  CHECK((*agents)["agents"].empty());
  const uint64_t after = RssBytes(pid);
  MESSAGE("daemon anonymous RSS with " << connections << " short-lived receivers: before "
                                       << (before >> 20) << " MiB, peak " << (peak >> 20)
                                       << " MiB, after " << (after >> 20) << " MiB");
  CheckBound(peak);
  if (!kSanitized) CHECK(after < before + (uint64_t{64} << 20));
  CHECK(daemon.Log().find("receiver_timeout") != std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
