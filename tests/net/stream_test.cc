// net/stream.h: the agent stream transport's two ends, over real Unix sockets.

#include "net/stream.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "net/endpoint.h"
#include "support/temp_dir.h"
#include "support/unix_socket.h"

namespace handoff::net {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using testing::ConnectUnixStream;

constexpr auto kPatience = std::chrono::seconds(10);

// Frames the server receives within `kPatience` until `want` of them came (fewer on timeout).
std::vector<StreamMessage> ReceiveFrames(StreamServer& server, size_t want) {
  std::vector<StreamMessage> got;
  const auto until = Clock::now() + kPatience;
  while (got.size() < want && Clock::now() < until) {
    auto m = server.TryReceive();
    REQUIRE(m.ok());
    if (*m) {
      got.push_back(std::move(**m));
      continue;
    }
    pollfd p{server.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
  }
  return got;
}

// Polls the server (taking frames, which are dropped) until `done` holds or kPatience passes.
template <typename Fn>
bool ServeUntil(StreamServer& server, Fn done) {
  const auto until = Clock::now() + kPatience;
  while (!done()) {
    if (Clock::now() >= until) return false;
    auto m = server.TryReceive();
    REQUIRE(m.ok());
    if (!*m) {
      pollfd p{server.fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
    }
  }
  return true;
}

// "a7" (built without operator+, which GCC 12 misreads as an overlapping copy here).
std::string Tagged(char tag, int i) {
  std::string s = std::to_string(i);
  s.insert(s.begin(), tag);
  return s;
}

std::string Text(const zmq::message_t& m) { return std::string(m.to_string_view()); }

std::string Framed(std::string_view body) {
  char header[kStreamHeaderBytes];
  EncodeStreamHeader(static_cast<uint32_t>(body.size()), header);
  return std::string(header, kStreamHeaderBytes) + std::string(body);
}

TEST_CASE("StreamHeadersAndPaths") {
  for (uint32_t size : {0u, 1u, 255u, 256u, 65'536u, 0x01020304u, UINT32_MAX}) {
    char header[kStreamHeaderBytes];
    EncodeStreamHeader(size, header);
    CHECK(DecodeStreamHeader(header) == size);
  }
  char header[kStreamHeaderBytes];
  EncodeStreamHeader(0x01020304u, header);
  CHECK(std::string(header, 4) == std::string("\x01\x02\x03\x04", 4));  // big-endian

  CHECK(StreamPathFor("ipc:///run/handoff/handoffd.sock") == "/run/handoff/handoffd.sock.stream");
  CHECK(StreamPathFor("tcp://127.0.0.1:5555").empty());
  // The longest path that fits, and one byte more.
  const std::string longest(kMaxIpcPathLength - 1 - kStreamSuffix.size(), 'a');
  CHECK(StreamPathFor("ipc:///" + longest) == "/" + longest + ".stream");
  CHECK(StreamPathFor("ipc:///" + longest + "a").empty());
}

TEST_CASE("AFrameGoesEachWayInOrder") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  auto server = StreamServer::Listen(path, {});
  REQUIRE(server.ok());
  auto client = StreamClient::Connect(path, size_t{64} << 20);
  REQUIRE(client.ok());

  // Many frames, an empty one and one far larger than a socket's buffer among them.
  std::vector<std::string> sent;
  for (int i = 0; i < 200; ++i) sent.push_back("request-" + std::to_string(i));
  sent.push_back("");
  sent.push_back(std::string(3 << 20, 'x'));
  for (const std::string& f : sent) REQUIRE((*client)->Send(f).ok());

  // The large one is only written while the client waits, as its replies are read.
  std::vector<StreamMessage> got;
  const auto until = Clock::now() + kPatience;
  while (got.size() < sent.size() && Clock::now() < until) {
    auto m = (*server)->TryReceive();
    REQUIRE(m.ok());
    if (*m) {
      got.push_back(std::move(**m));
    } else {
      REQUIRE((*client)->Receive(milliseconds(1)).ok());
    }
  }
  REQUIRE(got.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) CHECK(Text(got[i].frame) == sent[i]);
  const std::string id = got[0].connection;
  CHECK(StreamServer::Owns(id));
  CHECK_FALSE(StreamServer::Owns("c-0190a1b2-0000-7000-8000-000000000000"));
  CHECK_FALSE(StreamServer::Owns(std::string("\0\0\0\0\1", 5)));  // one ZeroMQ picks

  // Replies, the large one written partly now and the rest as the socket drains.
  REQUIRE((*server)->Send(id, "reply-1").ok());
  REQUIRE((*server)->Send(id, std::string(512 << 10, 'y')).ok());
  REQUIRE((*server)->Send(id, "reply-3").ok());
  std::vector<std::string> replies;
  const auto deadline = Clock::now() + kPatience;
  while (replies.size() < 3 && Clock::now() < deadline) {
    auto r = (*client)->Receive(milliseconds(5));
    REQUIRE(r.ok());
    if (*r) replies.push_back(**r);
    REQUIRE((*server)->TryReceive().ok());  // lets the server write what is left
  }
  REQUIRE(replies.size() == 3);
  CHECK(replies[0] == "reply-1");
  CHECK(replies[1] == std::string(512 << 10, 'y'));
  CHECK(replies[2] == "reply-3");
  CHECK((*server)->Send("\0s-nobody-", "x").IsUnavailable());
}

TEST_CASE("ConnectionsTakeTurns") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  auto server = StreamServer::Listen(path, {});
  REQUIRE(server.ok());
  auto a = StreamClient::Connect(path, 1 << 20);
  auto b = StreamClient::Connect(path, 1 << 20);
  REQUIRE((a.ok() && b.ok()));
  for (int i = 0; i < 50; ++i) {
    REQUIRE((*a)->Send(Tagged('a', i)).ok());
    REQUIRE((*b)->Send(Tagged('b', i)).ok());
  }
  auto got = ReceiveFrames(**server, 100);
  REQUIRE(got.size() == 100);
  // Each connection's frames in its order; neither waits for all of the other's.
  int next_a = 0, next_b = 0, first_b = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const std::string t = Text(got[i].frame);
    if (t[0] == 'a') {
      CHECK(t == Tagged('a', next_a++));
    } else {
      if (first_b < 0) first_b = static_cast<int>(i);
      CHECK(t == Tagged('b', next_b++));
    }
  }
  CHECK(next_a == 50);
  CHECK(next_b == 50);
  CHECK(first_b < 50);
}

TEST_CASE("AFrameTooLargeClosesItsConnectionOnly") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  StreamServerOptions options;
  options.max_frame_bytes = 1000;
  auto server = StreamServer::Listen(path, options);
  REQUIRE(server.ok());
  auto good = StreamClient::Connect(path, 1 << 20);
  REQUIRE(good.ok());
  REQUIRE((*good)->Send("hello").ok());
  auto hello = ReceiveFrames(**server, 1);
  REQUIRE(hello.size() == 1);

  // A header announcing 4 GiB: refused at once, before anything of it is buffered.
  const int bad = ConnectUnixStream(path);
  const std::string first = Framed("fine");
  REQUIRE(::write(bad, first.data(), first.size()) == static_cast<ssize_t>(first.size()));
  REQUIRE(::write(bad, "\xff\xff\xff\xff", 4) == 4);
  auto fine = ReceiveFrames(**server, 1);
  REQUIRE(fine.size() == 1);  // what it sent before the bad frame is still taken
  CHECK(Text(fine[0].frame) == "fine");
  std::vector<std::string> closed;
  REQUIRE(ServeUntil(**server, [&] {
    for (auto& id : (*server)->TakeClosed()) closed.push_back(id);
    return !closed.empty();
  }));
  CHECK(closed == std::vector<std::string>{fine[0].connection});
  CHECK((*server)->Send(fine[0].connection, "x").IsUnavailable());
  char byte;
  pollfd p{bad, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  CHECK(::read(bad, &byte, 1) == 0);  // the daemon hung up
  ::close(bad);

  // One just over the limit, sent whole, is refused the same way; the good connection lives.
  const int over = ConnectUnixStream(path);
  const std::string big = Framed(std::string(1001, 'z'));
  REQUIRE(::write(over, big.data(), big.size()) == static_cast<ssize_t>(big.size()));
  REQUIRE(ServeUntil(**server, [&] { return !(*server)->TakeClosed().empty(); }));
  ::close(over);
  CHECK((*server)->connections() == 1);
  REQUIRE((*server)->Send(hello[0].connection, "still here").ok());
  auto r = (*good)->Receive(std::chrono::seconds(5));
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK(**r == "still here");
}

TEST_CASE("UnfinishedFramesPastTheTotalLimitCostTheConnectionHoldingTheMost") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  StreamServerOptions options;
  options.max_buffered_bytes = 1 << 20;
  auto server = StreamServer::Listen(path, options);
  REQUIRE(server.ok());
  // Two clients each start a 900 KB frame and stop partway: 600 KB and 500 KB.
  const uint32_t size = 900'000;
  char header[kStreamHeaderBytes];
  EncodeStreamHeader(size, header);
  // Writes all of `bytes` to `fd`, letting the server read meanwhile (the socket holds less
  // than this); no frame is whole before the last byte, so none is taken here.
  auto send_all = [&](int fd, const std::string& bytes) {
    size_t done = 0;
    const auto until = Clock::now() + kPatience;
    while (done < bytes.size() && Clock::now() < until) {
      const ssize_t n =
          ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) done += static_cast<size_t>(n);
      if (done < bytes.size()) {
        auto m = (*server)->TryReceive();
        REQUIRE(m.ok());
        REQUIRE_FALSE(m->has_value());
      }
    }
    REQUIRE(done == bytes.size());
  };
  auto start_frame = [&](size_t sent) {
    const int fd = ConnectUnixStream(path);
    std::string bytes(header, kStreamHeaderBytes);
    bytes.append(sent, 'p');
    send_all(fd, bytes);
    return fd;
  };
  const int big = start_frame(600'000);
  REQUIRE(ServeUntil(**server, [&] { return (*server)->connections() == 1; }));
  const int small = start_frame(500'000);
  // Together past 1 MiB: the one holding the most is closed, the other kept.
  REQUIRE(ServeUntil(**server, [&] { return !(*server)->TakeClosed().empty(); }));
  CHECK(testing::HangsUp(big));
  CHECK((*server)->connections() == 1);
  // The other finishes its frame and is served.
  const std::string rest(size - 500'000, 'p');
  send_all(small, rest);
  auto got = ReceiveFrames(**server, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].frame.size() == size);
  ::close(big);
  ::close(small);
}

TEST_CASE("AClientThatHangsUpIsReportedAfterItsLastFrame") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  auto server = StreamServer::Listen(path, {});
  REQUIRE(server.ok());
  const int fd = ConnectUnixStream(path);
  std::string bytes =
      Framed("one") + Framed("two") + Framed("three") + "\x00\x00";  // and a torn header
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  auto got = ReceiveFrames(**server, 3);
  REQUIRE(got.size() == 3);
  CHECK(Text(got[2].frame) == "three");
  REQUIRE(ServeUntil(**server, [&] { return (*server)->connections() == 0; }));
  CHECK((*server)->TakeClosed() == std::vector<std::string>{got[0].connection});
  CHECK((*server)->Send(got[0].connection, "late").IsUnavailable());
}

TEST_CASE("AClientThatDoesNotReadFillsItsQueueAndThenGetsEverything") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  StreamServerOptions options;
  options.max_unsent_bytes = 64 * 1024;
  auto server = StreamServer::Listen(path, options);
  REQUIRE(server.ok());
  auto client = StreamClient::Connect(path, 1 << 20);
  REQUIRE(client.ok());
  REQUIRE((*client)->Send("hi").ok());
  auto hi = ReceiveFrames(**server, 1);
  REQUIRE(hi.size() == 1);
  const std::string id = hi[0].connection;

  // The socket's buffers fill, then max_unsent_bytes: full, and nothing is lost.
  const std::string chunk(4096, 'q');
  int queued = 0;
  Status s;
  while ((s = (*server)->Send(id, chunk + std::to_string(queued))).ok()) {
    ++queued;
    REQUIRE(queued < 100'000);
  }
  CHECK(s.IsResourceExhausted());
  CHECK(queued > 16);
  int read = 0;
  const auto until = Clock::now() + kPatience;
  while (read < queued && Clock::now() < until) {
    auto r = (*client)->Receive(milliseconds(5));
    REQUIRE(r.ok());
    if (*r) {
      CHECK(**r == chunk + std::to_string(read));
      ++read;
    }
    REQUIRE((*server)->TryReceive().ok());
  }
  CHECK(read == queued);
  CHECK((*server)->Send(id, "room again").ok());
}

TEST_CASE("ConnectionsBeyondTheLimitAreClosed") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  StreamServerOptions options;
  options.max_connections = 2;
  auto server = StreamServer::Listen(path, options);
  REQUIRE(server.ok());
  const int a = ConnectUnixStream(path), b = ConnectUnixStream(path);
  REQUIRE(ServeUntil(**server, [&] { return (*server)->connections() == 2; }));
  const int c = ConnectUnixStream(path);
  pollfd p{c, POLLIN, 0};
  bool hung_up = false;
  REQUIRE(ServeUntil(**server, [&] {
    char byte;
    hung_up = ::poll(&p, 1, 0) == 1 && ::read(c, &byte, 1) == 0;
    return hung_up;
  }));
  CHECK((*server)->connections() == 2);
  ::close(a);
  REQUIRE(ServeUntil(**server, [&] { return (*server)->connections() == 1; }));
  const int d = ConnectUnixStream(path);
  REQUIRE(ServeUntil(**server, [&] { return (*server)->connections() == 2; }));
  for (int fd : {b, c, d}) ::close(fd);
}

TEST_CASE("OutOfDescriptorsTheServerLeavesNewConnectionsWaitingUntilOneCloses") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  auto server = StreamServer::Listen(path, {});
  REQUIRE(server.ok());
  const int a = ConnectUnixStream(path);
  const int b = ConnectUnixStream(path);
  const std::string hello = Framed("from b");
  REQUIRE(::write(b, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
  // Room for exactly one more descriptor: a is accepted, b cannot be.
  const int lowest_free = ::dup(0);
  REQUIRE(lowest_free >= 0);
  ::close(lowest_free);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(lowest_free + 1);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  const bool one = ServeUntil(**server, [&] { return (*server)->connections() == 1; });
  for (int i = 0; i < 3; ++i) REQUIRE((*server)->TryReceive().ok());  // b's accept fails
  // The listening socket is left alone: nothing to do, so nothing for the loop to spin on.
  pollfd p{(*server)->fd(), POLLIN, 0};
  const int ready = ::poll(&p, 1, 0);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  REQUIRE(one);
  CHECK(ready == 0);
  // a closes: a descriptor is free, b is accepted and heard.
  ::close(a);
  auto got = ReceiveFrames(**server, 1);
  REQUIRE(got.size() == 1);
  CHECK(Text(got[0].frame) == "from b");
  CHECK((*server)->connections() == 1);
  ::close(b);
}

TEST_CASE("AClientReconnectsToADaemonThatCameBack") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  CHECK(StreamClient::Connect(path, 1 << 20).status().IsUnavailable());  // nothing there yet
  auto server = StreamServer::Listen(path, {});
  REQUIRE(server.ok());
  auto client = StreamClient::Connect(path, 1 << 20);
  REQUIRE(client.ok());
  REQUIRE((*client)->Send("before").ok());
  REQUIRE(ReceiveFrames(**server, 1).size() == 1);

  server->reset();  // the daemon is gone; its socket file stays, stale
  auto r = (*client)->Receive(milliseconds(50));
  REQUIRE(r.ok());
  CHECK_FALSE(r->has_value());
  CHECK_FALSE((*client)->connected());
  REQUIRE((*client)->Send("while away").ok());  // queued

  auto again = StreamServer::Listen(path, {});  // replaces the stale file
  REQUIRE(again.ok());
  std::vector<StreamMessage> got;
  const auto until = Clock::now() + kPatience;
  while (got.empty() && Clock::now() < until) {
    REQUIRE((*client)->Receive(milliseconds(20)).ok());  // reconnects, writes what waits
    auto m = (*again)->TryReceive();
    REQUIRE(m.ok());
    if (*m) got.push_back(std::move(**m));
  }
  REQUIRE(got.size() == 1);
  CHECK(Text(got[0].frame) == "while away");
  REQUIRE((*again)->Send(got[0].connection, "welcome back").ok());
  auto reply = (*client)->Receive(std::chrono::seconds(5));
  REQUIRE(reply.ok());
  REQUIRE(reply->has_value());
  CHECK(**reply == "welcome back");
}

TEST_CASE("AClientRefusesAFrameLargerThanItTakes") {
  testing::TempDir dir;
  const std::string path = dir.Sub("a.stream");
  auto server = StreamServer::Listen(path, {});
  REQUIRE(server.ok());
  auto client = StreamClient::Connect(path, 100);
  REQUIRE(client.ok());
  REQUIRE((*client)->Send("hi").ok());
  auto hi = ReceiveFrames(**server, 1);
  REQUIRE(hi.size() == 1);
  REQUIRE((*server)->Send(hi[0].connection, "small").ok());
  REQUIRE((*server)->Send(hi[0].connection, std::string(101, 'b')).ok());
  auto small = (*client)->Receive(std::chrono::seconds(5));
  REQUIRE(small.ok());
  CHECK(**small == "small");
  auto big = (*client)->Receive(std::chrono::seconds(5));
  CHECK(big.status().IsCorruption());
  CHECK_FALSE((*client)->connected());
}

}  // namespace
}  // namespace handoff::net
