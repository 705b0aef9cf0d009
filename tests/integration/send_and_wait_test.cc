// One node, real processes: a send that also waits for its outcome, over the raw protocol
// (wait_rid, wait_payload, wait's payload) and through Client::SendAndWait, across a SIGKILL.

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "base/clock.h"
#include "base/intent_id.h"
#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/daemon.h"
#include "wire/agent_protocol.h"

namespace handoff::testing {
namespace {

constexpr const char* kWorker = "agent://acme/test/worker";

SendRequest Work(int64_t n) { return DoubleWork(n, kWorker); }

TEST_CASE("ASendWithAWaitRidIsAnsweredWithItsOutcomeAfterItsOwnReply") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(daemon.endpoint());
  const std::string id = NewIntentId(SystemClock::Instance().NowMs()).ToString();
  auto send = [&](uint64_t rid, uint64_t wait_rid, const std::string& to_agent,
                  uint64_t wait_timeout_ms, bool wait_payload = true) {
    wire::RequestBuilder b("send", rid);
    b.w().Field("intent_id", id);
    b.w().Field("intent_type", "intent.test.double.v1");
    b.w().Field("to_agent", to_agent);
    b.w().Field("wait_rid", wait_rid);
    if (wait_timeout_ms != 0) b.w().Field("wait_timeout_ms", wait_timeout_ms);
    if (!wait_payload) b.w().Field("wait_payload", false);
    b.w().Key("payload");
    b.w().BeginMap();
    b.w().Field("n", int64_t{7});
    b.w().EndMap();
    std::string frame = b.Finish();
    socket.send(zmq::buffer(frame), zmq::send_flags::none);
  };
  std::vector<uint64_t> seen;  // rids, in the order their replies came
  // The next reply; its frame is kept with it (the decoded reply points into it).
  std::vector<std::unique_ptr<zmq::message_t>> frames;
  auto next = [&]() -> wire::Reply {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, std::chrono::seconds(20)) == 1);
    frames.push_back(std::make_unique<zmq::message_t>());
    REQUIRE(socket.recv(*frames.back(), zmq::recv_flags::none));
    auto reply = wire::DecodeReply(frames.back()->to_string_view());
    REQUIRE(reply.ok());
    seen.push_back(reply->rid);
    return std::move(reply).value();
  };
  auto outcome = [](const wire::Reply& r, std::string* status, int64_t* doubled) {
    bool terminal = false;
    auto body = r.body();
    REQUIRE(body.OptBool("terminal", &terminal).ok());
    auto intent = MapReader::From(*body.Find("intent"), "intent");
    REQUIRE(intent.ok());
    REQUIRE(intent->OptString("status", status).ok());
    if (const msgpack::object* result = intent->Find("result")) {
      auto m = MapReader::From(*result, "result");
      REQUIRE(m.ok());
      REQUIRE(m->OptInt("double", doubled).ok());
    }
    return terminal;
  };
  // The answer's payload's n; nullopt when it came without its payload (nil, which Find
  // reads as absent).
  auto payload_n = [](const wire::Reply& r) -> std::optional<int64_t> {
    auto intent = MapReader::From(*r.body().Find("intent"), "intent");
    REQUIRE(intent.ok());
    const msgpack::object* payload = intent->Find("payload");
    if (payload == nullptr) return std::nullopt;
    auto m = MapReader::From(*payload, "payload");
    REQUIRE(m.ok());
    int64_t n = -1;
    REQUIRE(m->OptInt("n", &n).ok());
    return n;
  };

  // The wait needs a rid of its own.
  send(1, 1, kWorker, 0);
  wire::Reply same = next();
  CHECK(same.rid == 1);
  CHECK(same.status.IsInvalidArgument());
  CHECK(same.status.message().find("wait_rid") != std::string::npos);
  // wait_payload, and wait's payload, are booleans: anything else is refused, naming them.
  for (const char* op : {"send", "wait"}) {
    wire::RequestBuilder b(op, 5);
    b.w().Field("intent_id", id);
    b.w().Field("intent_type", "intent.test.double.v1");
    b.w().Field("to_agent", kWorker);
    b.w().Field("wait_rid", uint64_t{6});
    b.w().Field(std::string_view(op) == "send" ? "wait_payload" : "payload", uint64_t{0});
    std::string frame = b.Finish();
    socket.send(zmq::buffer(frame), zmq::send_flags::none);
    wire::Reply wrong = next();
    CHECK(wrong.rid == 5);
    CHECK(wrong.status.IsInvalidArgument());
    CHECK(wrong.status.message().find(
              std::string_view(op) == "send" ? "wait_payload" : "payload") != std::string::npos);
  }
  // A refused send parks no wait: nothing ever answers rid 11, though it would time out at
  // once (the last step below waits 300 ms for an answer that must come after it).
  send(10, 11, "not an address", 1);
  wire::Reply refused = next();
  CHECK(refused.rid == 10);
  CHECK(refused.status.IsInvalidArgument());

  // Stored, then answered once an agent completed it: its reply first, then the wait's.
  send(20, 21, kWorker, 0);
  wire::Reply sent = next();
  REQUIRE(sent.rid == 20);
  REQUIRE(sent.status.ok());
  {
    AgentPool agents(daemon, kWorker, 1);
    wire::Reply done = next();
    CHECK(done.rid == 21);
    std::string status;
    int64_t doubled = 0;
    CHECK(outcome(done, &status, &doubled));
    CHECK(status == "COMPLETED");
    CHECK(doubled == 14);
    CHECK(payload_n(done) == 7);  // with its payload unless asked otherwise
  }
  // Sent again (the same id and body): the intent has ended, so the wait is answered at once.
  send(30, 31, kWorker, 0);
  wire::Reply again = next();
  CHECK(again.rid == 30);
  CHECK(again.status.ok());
  wire::Reply at_once = next();
  CHECK(at_once.rid == 31);
  std::string status;
  int64_t doubled = 0;
  CHECK(outcome(at_once, &status, &doubled));
  CHECK(doubled == 14);
  CHECK(payload_n(at_once) == 7);
  // The sender has the payload: with wait_payload false the answer comes without it (nil),
  // its result and status as before; a `wait` with payload false likewise, and without it
  // with the payload.
  send(32, 33, kWorker, 0, /*wait_payload=*/false);
  CHECK(next().rid == 32);
  wire::Reply lean = next();
  CHECK(lean.rid == 33);
  doubled = 0;
  CHECK(outcome(lean, &status, &doubled));
  CHECK(status == "COMPLETED");
  CHECK(doubled == 14);
  CHECK(payload_n(lean) == std::nullopt);
  for (bool with_payload : {false, true}) {
    wire::RequestBuilder b("wait", with_payload ? 35 : 34);
    b.w().Field("intent_id", id);
    if (!with_payload) b.w().Field("payload", false);
    std::string frame = b.Finish();
    socket.send(zmq::buffer(frame), zmq::send_flags::none);
    wire::Reply waited = next();
    doubled = 0;
    CHECK(outcome(waited, &status, &doubled));
    CHECK(doubled == 14);
    CHECK(payload_n(waited) == (with_payload ? std::optional<int64_t>(7) : std::nullopt));
  }

  // Nobody serves this address: the wait runs out after wait_timeout_ms, not terminal.
  const std::string other = NewIntentId(SystemClock::Instance().NowMs()).ToString();
  {
    wire::RequestBuilder b("send", 40);
    b.w().Field("intent_id", other);
    b.w().Field("intent_type", "intent.test.double.v1");
    b.w().Field("to_agent", "agent://acme/test/nobody");
    b.w().Field("wait_rid", uint64_t{41});
    b.w().Field("wait_timeout_ms", uint64_t{300});
    std::string frame = b.Finish();
    socket.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  CHECK(next().rid == 40);
  wire::Reply ran_out = next();
  CHECK(ran_out.rid == 41);
  status.clear();
  CHECK_FALSE(outcome(ran_out, &status, &doubled));
  CHECK(status == "SUBMITTED");
  CHECK(seen == std::vector<uint64_t>{1, 5, 5, 10, 20, 21, 30, 31, 32, 33, 34, 35, 40, 41});
}

TEST_CASE("SendAndWaitReturnsTheOutcomeInOneRequestAndOutlivesADaemonRestart") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  {
    AgentPool agents(daemon, kWorker, 1);
    std::vector<std::string> stored;
    auto done = client->SendAndWait(Work(21), std::chrono::seconds(20),
                                    [&](const SendReceipt& r) { stored.push_back(r.intent_id); });
    REQUIRE(done.ok());
    CHECK(done->status == IntentStatus::kCompleted);
    CHECK(done->result["double"] == 42);
    // Answered without the payload (wait_payload: false); the client fills in the one it sent.
    CHECK(done->payload == Work(21).payload);
    REQUIRE(stored.size() == 1);
    CHECK(stored[0] == done->intent_id);
  }
  // Nobody serves it: TimedOut once the time is up, as Wait.
  auto pending = client->SendAndWait(Work(1), std::chrono::milliseconds(300));
  CHECK(pending.status().IsTimedOut());
  // A refused send: its error, and no receipt.
  SendRequest bad = Work(2);
  bad.to_agent = "not an address";
  bool called = false;
  auto refused =
      client->SendAndWait(bad, std::chrono::seconds(5), [&](const SendReceipt&) { called = true; });
  CHECK(refused.status().IsInvalidArgument());
  CHECK_FALSE(called);

  // The daemon dies after the send is stored: the wait parked with it is gone, and the client
  // goes on waiting as Wait does, across the restart.
  std::atomic<bool> on_disk{false};
  Result<Intent> outcome = Status::IOError("not yet");
  std::thread sender([&] {
    outcome = client->SendAndWait(Work(5), std::chrono::seconds(60),
                                  [&](const SendReceipt&) { on_disk = true; });
  });
  const bool was_stored = WaitFor([&] { return on_disk.load(); }, std::chrono::seconds(10));
  CHECK(was_stored);
  if (was_stored) {
    daemon.Kill();
    daemon.Start();
  }
  {  // the sender is joined whatever happened above
    AgentPool agents(daemon, kWorker, 1);
    sender.join();
  }
  REQUIRE(outcome.ok());
  CHECK(outcome->status == IntentStatus::kCompleted);
  CHECK(outcome->result["double"] == 10);
  CHECK(outcome->payload == Work(5).payload);  // here from the `wait` after the restart
}

}  // namespace
}  // namespace handoff::testing
