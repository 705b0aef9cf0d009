// Agent protocol version 2 against a running handoffd, over raw ZeroMQ sockets: batches of
// requests are handled in order, a client that says version 2 gets its replies, pushes and
// answers batched (within the bounds), a version 1 client never sees a batch, and a batch that
// cannot be split changes nothing.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "base/msgpack_io.h"
#include "client/connection.h"
#include "handoff/client.h"
#include "support/daemon.h"
#include "wire/agent_protocol.h"

namespace handoff::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kWorker = "agent://acme/test/worker";

class RawConnection {
 public:
  explicit RawConnection(const std::string& endpoint)
      : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  void Send(const std::string& frame) { socket_.send(zmq::buffer(frame), zmq::send_flags::none); }
  void SendBatch(const std::vector<std::string>& frames) {
    std::vector<std::string_view> views(frames.begin(), frames.end());
    Send(wire::EncodeBatch(views));
  }

  // Receives frames until `want` messages (replies and pushes) have come, within 20 s; fails
  // the test otherwise. Every frame is recorded in frames().
  std::vector<wire::Reply> Receive(size_t want) {
    std::vector<wire::Reply> out;
    const auto until = SteadyClock::now() + std::chrono::seconds(20);
    while (out.size() < want) {
      REQUIRE(SteadyClock::now() < until);
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) == 0) continue;
      zmq::message_t message;
      REQUIRE(socket_.recv(message, zmq::recv_flags::none));
      frames_.push_back(message.to_string());
      auto replies = wire::DecodeReplies(message.to_string_view());
      REQUIRE(replies.ok());
      for (wire::Reply& r : *replies) out.push_back(std::move(r));
    }
    return out;
  }

  const std::vector<std::string>& frames() const { return frames_; }
  size_t batches() const {
    size_t n = 0;
    for (const std::string& f : frames_) n += wire::IsBatch(f) ? 1 : 0;
    return n;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::vector<std::string> frames_;
};

std::string Send(uint64_t rid, uint64_t version, int n, size_t data_bytes = 0) {
  wire::RequestBuilder b("send", rid, version);
  b.w().Field("to_agent", kWorker);
  b.w().Field("intent_type", "intent.batch.v1");
  b.w().Field("from_agent", "agent://acme/test/sender");
  b.w().Key("payload");
  b.w().BeginMap();
  b.w().Field("n", static_cast<int64_t>(n));
  b.w().Field("data", std::string(data_bytes, 'x'));
  b.w().EndMap();
  return b.Finish();
}

std::string Receive(uint64_t rid, uint64_t version, uint64_t credit) {
  wire::RequestBuilder b("receive", rid, version);
  b.w().Field("address", kWorker);
  b.w().Field("credit", credit);
  return b.Finish();
}

std::string Complete(uint64_t rid, const std::string& id, uint64_t attempt) {
  wire::RequestBuilder b("complete", rid, 2);
  b.w().Field("intent_id", id);
  b.w().Field("attempt", attempt);
  b.w().Key("result");
  b.w().BeginMap();
  b.w().Field("ok", true);
  b.w().EndMap();
  return b.Finish();
}

size_t Count(Client& client, std::optional<IntentStatus> status = std::nullopt) {
  ListOptions options;
  options.limit = 10000;
  options.status = status;
  auto list = client.List(options);
  REQUIRE(list.ok());
  return list->size();
}

TEST_CASE("ABatchIsHandledInOrderAndAVersion2ClientGetsBatchesBack") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  RawConnection sender(daemon.endpoint());

  // hello says which versions the daemon speaks.
  sender.Send(wire::RequestBuilder("hello", 1, 2).Finish());
  auto hello = sender.Receive(1);
  REQUIRE(hello[0].status.ok());
  uint64_t protocol = 0;
  CHECK(hello[0].body().OptUint("protocol", &protocol).ok());
  CHECK(protocol == 2);

  // 100 sends and, after them in the same batch, a get of the first: order is kept.
  std::vector<std::string> requests;
  for (int i = 0; i < 100; ++i) requests.push_back(Send(100 + i, 2, i));
  sender.SendBatch(requests);
  auto sent = sender.Receive(100);
  std::vector<std::string> ids;
  for (size_t i = 0; i < sent.size(); ++i) {
    REQUIRE(sent[i].status.ok());
    CHECK(sent[i].rid == 100 + i);  // one connection's replies come in order
    std::string id;
    REQUIRE(sent[i].body().String("intent_id", &id).ok());
    ids.push_back(id);
  }
  CHECK(sender.batches() >= 1);
  CHECK(sender.frames().size() < 100);
  for (const std::string& f : sender.frames()) CHECK(wire::MessagesIn(f) <= wire::kSendBatchItems);
  wire::RequestBuilder get("get", 300, 2);
  get.w().Field("intent_id", ids[0]);
  sender.SendBatch({Send(299, 2, 100), get.Finish()});
  auto two = sender.Receive(2);
  CHECK(two[0].rid == 299);
  CHECK(two[1].rid == 300);
  CHECK(two[1].status.ok());

  // A version 2 receiver gets its deliveries batched, and completes them in one batch.
  RawConnection worker(daemon.endpoint());
  worker.Send(Receive(1, 2, 200));
  std::vector<std::string> completes;
  size_t delivered = 0;
  uint64_t rid = 10;
  while (delivered < 101) {
    for (wire::Reply& r : worker.Receive(1)) {
      if (r.push.empty()) continue;
      auto intent = MapReader::From(*r.body().Find("intent"), "intent");
      REQUIRE(intent.ok());
      std::string id;
      uint64_t attempt = 0;
      REQUIRE(intent->String("intent_id", &id).ok());
      REQUIRE(intent->OptUint("delivery_attempt", &attempt).ok());
      completes.push_back(Complete(rid++, id, attempt));
      ++delivered;
    }
  }
  CHECK(worker.batches() >= 1);
  worker.SendBatch(completes);
  for (const wire::Reply& r : worker.Receive(101)) CHECK(r.status.ok());
  auto client = daemon.Connect();
  CHECK(Count(*client, IntentStatus::kCompleted) == 101);
}

TEST_CASE("AVersion1ClientNeverSeesABatch") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  RawConnection worker(daemon.endpoint());
  worker.Send(Receive(1, 1, 100));
  (void)worker.Receive(1);
  RawConnection sender(daemon.endpoint());
  // Many requests at once, as separate messages: their replies are many too.
  for (int i = 0; i < 60; ++i) sender.Send(Send(10 + i, 1, i));
  for (const wire::Reply& r : sender.Receive(60)) CHECK(r.status.ok());
  (void)worker.Receive(60);  // the deliveries
  CHECK(sender.frames().size() == 60);
  CHECK(sender.batches() == 0);
  CHECK(worker.batches() == 0);
}

TEST_CASE("ABatchThatCannotBeSplitChangesNothing") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  RawConnection raw(daemon.endpoint());
  auto client = daemon.Connect();

  // More messages than a batch may carry.
  std::vector<std::string> too_many(wire::kMaxBatchItems + 1, Send(1, 2, 0));
  raw.SendBatch(too_many);
  auto refused = raw.Receive(1);
  CHECK(refused[0].rid == 0);
  CHECK(refused[0].status.IsInvalidArgument());
  CHECK(refused[0].status.message().find("at most 1024") != std::string::npos);

  // A batch cut short after two good sends.
  std::string cut = wire::EncodeBatch({Send(2, 2, 0), Send(3, 2, 1), Send(4, 2, 2)});
  cut.resize(cut.size() - 5);
  raw.Send(cut);
  CHECK(raw.Receive(1)[0].status.IsInvalidArgument());
  // Empty.
  raw.Send(std::string("\x90", 1));
  CHECK(raw.Receive(1)[0].status.message().find("empty") != std::string::npos);
  CHECK(Count(*client) == 0);

  // A well-formed batch with bad messages: each of those gets its own error, the rest is done.
  raw.SendBatch({Send(5, 2, 0), std::string("\x05", 1), wire::RequestBuilder("get", 6, 9).Finish(),
                 Send(7, 2, 1)});
  auto mixed = raw.Receive(4);
  size_t ok = 0, bad = 0;
  for (const wire::Reply& r : mixed) (r.status.ok() ? ok : bad) += 1;
  CHECK(ok == 2);
  CHECK(bad == 2);
  CHECK(Count(*client) == 2);
  CHECK(daemon.running());
}

TEST_CASE("BatchesTheDaemonSendsStayWithinTheirBounds") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  RawConnection sender(daemon.endpoint());
  // 40 intents of 100 KiB each: 4 MB of deliveries for one receiver, more than one batch holds.
  for (int i = 0; i < 40; ++i) sender.Send(Send(10 + i, 2, i, 100 * 1024));
  for (const wire::Reply& r : sender.Receive(40)) REQUIRE(r.status.ok());
  RawConnection worker(daemon.endpoint());
  worker.Send(Receive(1, 2, 100));
  (void)worker.Receive(41);
  size_t batches = 0;
  for (const std::string& f : worker.frames()) {
    if (!wire::IsBatch(f)) continue;
    ++batches;
    CHECK(f.size() <= wire::kMaxBatchBytes + 16);
    CHECK(wire::MessagesIn(f) <= wire::kSendBatchItems);
  }
  CHECK(batches >= 1);
  CHECK(worker.frames().size() >= 4);  // 4 MB cannot fit in fewer 1 MiB batches
}

TEST_CASE("TheClientLibrarySpeaksVersion2AndTakesBatchesApart") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto conn = Connection::Open(daemon.client_options());
  REQUIRE(conn.ok());
  CHECK((*conn)->protocol() == 0);
  auto registered = (*conn)->Call("receive", [](MsgWriter& w) {
    w.Field("address", kWorker);
    w.Field("credit", uint64_t{100});
  });
  REQUIRE(registered.ok());
  CHECK((*conn)->protocol() == 2);
  // 60 sends in one batch: their deliveries reach the connection batched, and each comes out.
  RawConnection sender(daemon.endpoint());
  std::vector<std::string> sends;
  for (int i = 0; i < 60; ++i) sends.push_back(Send(10 + i, 2, i));
  sender.SendBatch(sends);
  (void)sender.Receive(60);
  std::set<std::string> delivered;
  const auto until = SteadyClock::now() + std::chrono::seconds(20);
  while (delivered.size() < 60 && SteadyClock::now() < until) {
    auto push = (*conn)->NextPush(std::chrono::milliseconds(200));
    REQUIRE(push.ok());
    if (!*push) continue;
    auto intent = MapReader::From(*(*push)->reply.body().Find("intent"), "intent");
    REQUIRE(intent.ok());
    std::string id;
    REQUIRE(intent->String("intent_id", &id).ok());
    delivered.insert(id);
  }
  CHECK(delivered.size() == 60);
}

TEST_CASE("TheClientLibraryFallsBackToVersion1ForAnOlderDaemon") {
  // A stand-in for a daemon from before version 2: it refuses v 2 as such daemons do and
  // answers v 1 requests; it must never see a v 2 request after the hello, nor a batch.
  TempDir dir;
  const std::string endpoint = "ipc://" + dir.path() + "/old.sock";
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(endpoint);
  std::atomic<bool> stop{false};
  std::vector<uint64_t> versions;  // of every request after the hello
  std::atomic<int> batches{0};
  std::thread old([&] {
    while (!stop.load()) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      zmq::message_t id, frame;
      if (!router.recv(id) || !router.recv(frame)) continue;
      if (wire::IsBatch(frame.to_string_view())) {
        ++batches;
        continue;
      }
      uint64_t rid = 0;
      auto request = wire::DecodeRequest(frame.to_string_view(), &rid);
      if (!request.ok()) continue;
      std::string reply;
      if (request->version != 1) {
        reply = wire::EncodeErrorReply(
            rid, Status::InvalidArgument(
                     "unsupported protocol version 2; this handoffd speaks version 1"));
      } else {
        versions.push_back(request->version);
        wire::ReplyBuilder b(rid);
        b.w().Field("node", "node-old");
        reply = b.Finish();
      }
      router.send(id, zmq::send_flags::sndmore);
      router.send(zmq::buffer(reply), zmq::send_flags::none);
    }
  });
  ClientOptions options;
  options.endpoint = endpoint;
  auto conn = Connection::Open(options);
  REQUIRE(conn.ok());
  for (int i = 0; i < 3; ++i) CHECK((*conn)->Call("status", nullptr).ok());
  CHECK((*conn)->protocol() == 1);
  stop.store(true);
  old.join();
  CHECK(versions == std::vector<uint64_t>{1, 1, 1});
  CHECK(batches.load() == 0);
}

}  // namespace
}  // namespace handoff::testing
