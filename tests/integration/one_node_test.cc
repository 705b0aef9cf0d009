// One node, real processes: a real handoffd, real agents (the C++ Agent in threads), real
// LMDB files, SIGKILL.

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "base/clock.h"
#include "base/intent_id.h"
#include "client/connection.h"
#include "client/convert.h"
#include "handoff/agent.h"
#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/daemon.h"
#include "wire/agent_protocol.h"

namespace handoff::testing {
namespace {

constexpr const char* kWorker = "agent://acme/test/worker";

SendRequest Work(int64_t n) { return DoubleWork(n, kWorker); }

void CheckHistory(Client& client, const std::string& id) {
  auto events = client.Events(id);
  REQUIRE(events.ok());
  REQUIRE(events->size() >= 4);
  CHECK(events->front().event_type == "intent.created");
  CHECK(events->back().event_type == "intent.completed");
  uint32_t seq = 0;
  for (const Event& e : *events) {
    CHECK(e.seq == seq + 1);
    seq = e.seq;
    CHECK(e.node == "node-a");
  }
}

TEST_CASE("AThousandIntentsFromASenderToAnAgentAllCompleteWithTheRightResults") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  AgentPool agents(daemon, kWorker, 2);
  auto client = daemon.Connect();

  std::vector<std::string> ids;
  for (int64_t i = 0; i < 1000; ++i) {
    auto receipt = client->Send(Work(i));
    REQUIRE(receipt.ok());
    CHECK(receipt->status == IntentStatus::kSubmitted);
    ids.push_back(receipt->intent_id);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    auto done = client->Wait(ids[i], std::chrono::seconds(60));
    REQUIRE(done.ok());
    REQUIRE(done->status == IntentStatus::kCompleted);
    CHECK(done->result["n"] == static_cast<int64_t>(i));
    CHECK(done->result["double"] == static_cast<int64_t>(2 * i));
    CHECK(done->delivery_attempt == 1);
  }
  for (size_t i = 0; i < ids.size(); i += 97) CheckHistory(*client, ids[i]);
  ListOptions completed;
  completed.status = IntentStatus::kCompleted;
  completed.limit = 2000;
  auto list = client->List(completed);
  REQUIRE(list.ok());
  CHECK(list->size() == 1000);
}

TEST_CASE("DaemonKilledWhileIntentsAreSentAndServedLosesNothing") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  AgentPool agents(daemon, kWorker, 2);

  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> acked;  // every send that returned an id
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    auto client = daemon.Connect();
    for (int64_t i = 0; !stop.load(); ++i) {
      auto receipt = client->Send(Work(i));
      if (!receipt.ok()) continue;  // the daemon was down past the client's timeout
      std::lock_guard<std::mutex> lock(mu);
      acked.emplace_back(receipt->intent_id, i);
    }
  });
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  for (size_t target : {100u, 250u, 400u}) {
    REQUIRE(WaitFor([&] { return acked_count() >= target; }, std::chrono::seconds(60)));
    daemon.Kill();
    daemon.Start();
  }
  REQUIRE(WaitFor([&] { return acked_count() >= 500; }, std::chrono::seconds(60)));
  stop.store(true);
  sender.join();

  auto client = daemon.Connect();
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [id, n] : acked) {
    auto done = client->Wait(id, std::chrono::seconds(60));
    REQUIRE(done.ok());
    INFO("intent " << id);
    REQUIRE(done->status == IntentStatus::kCompleted);
    CHECK(done->result["double"] == 2 * n);
    CHECK(agents.Handled(id));
  }
  for (size_t i = 0; i < acked.size(); i += 53) CheckHistory(*client, acked[i].first);
}

TEST_CASE("ACleanStopAndRestartKeepsIntentsCheckpointsAndLeases") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  std::string id;
  {
    auto client = daemon.Connect();
    auto receipt = client->Send(Work(7));
    REQUIRE(receipt.ok());
    id = receipt->intent_id;
  }
  // An agent takes it, saves a checkpoint, then vanishes without finishing.
  {
    AgentOptions options;
    options.address = kWorker;
    options.client = daemon.client_options();
    auto agent = Agent::Connect(options);
    REQUIRE(agent.ok());
    std::thread run([&] {
      CHECK((*agent)
                ->Run([&](Task& task) {
                  CHECK(task.Checkpoint({{"step", 3}}).ok());
                  (*agent)->Stop();
                  return Outcome::Abandon();
                })
                .ok());
    });
    run.join();
  }
  CHECK(daemon.Stop() == 0);
  daemon.Start();
  auto client = daemon.Connect();
  auto intent = client->Get(id);
  REQUIRE(intent.ok());
  CHECK(intent->status == IntentStatus::kInProgress);
  CHECK(intent->checkpoint == Json{{"step", 3}});
  auto status = client->NodeStatus();
  REQUIRE(status.ok());
  CHECK((*status)["leases"] == 1);
  // The lease (2 s) runs out after the restart and the next agent resumes from the checkpoint.
  AgentOptions options;
  options.address = kWorker;
  options.client = daemon.client_options();
  auto agent = Agent::Connect(options);
  REQUIRE(agent.ok());
  Json seen_checkpoint;
  uint32_t seen_attempt = 0;
  std::thread run([&] {
    CHECK((*agent)
              ->Run([&](Task& task) {
                seen_checkpoint = task.checkpoint();
                seen_attempt = task.attempt();
                (*agent)->Stop();
                return Outcome::Complete("done");
              })
              .ok());
  });
  auto done = client->Wait(id, std::chrono::seconds(30));
  run.join();
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(seen_checkpoint == Json{{"step", 3}});
  CHECK(seen_attempt == 2);
}

TEST_CASE("GroupCommitPutsManyPipelinedSendsIntoFewCommits") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  auto before = client->NodeStatus();
  REQUIRE(before.ok());

  // 500 sends on one connection without waiting for replies, as a busy agent would.
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(daemon.endpoint());
  constexpr int kSends = 500;
  for (int i = 0; i < kSends; ++i) {
    wire::RequestBuilder b("send", static_cast<uint64_t>(i + 1));
    b.w().Field("intent_type", "intent.batch.v1");
    b.w().Field("to_agent", kWorker);
    std::string frame = b.Finish();
    socket.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  int replies = 0;
  while (replies < kSends) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, std::chrono::seconds(10)) == 1);
    zmq::message_t message;
    REQUIRE(socket.recv(message, zmq::recv_flags::none));
    auto reply = wire::DecodeReply(message.to_string_view());
    REQUIRE(reply.ok());
    CHECK(reply->status.ok());
    ++replies;
  }
  auto after = client->NodeStatus();
  REQUIRE(after.ok());
  const int64_t commits = (*after)["commits"].get<int64_t>() - (*before)["commits"].get<int64_t>();
  const int64_t writes = (*after)["writes"].get<int64_t>() - (*before)["writes"].get<int64_t>();
  CHECK(writes == kSends);
  MESSAGE(kSends << " sends took " << commits << " commits");
  CHECK(commits >= 1);
  CHECK(commits <= kSends / 5);  // batches of several sends per fsync, not one each
  CHECK((*after)["intents"]["SUBMITTED"] == kSends);
  // LMDB takes the durable batches a few at a time, and all of them once the node is idle
  // (after 100 ms): never more LMDB commits than batches (plus one that may have taken
  // the batches made durable before `before`).
  int64_t lmdb_commits = 0;
  CHECK(WaitFor(
      [&] {
        auto now = client->NodeStatus();
        REQUIRE(now.ok());
        lmdb_commits =
            (*now)["lmdb_commits"].get<int64_t>() - (*before)["lmdb_commits"].get<int64_t>();
        return lmdb_commits >= 1;
      },
      std::chrono::seconds(10)));
  CHECK(lmdb_commits <= commits + 1);
}

TEST_CASE("OneConnectionReceivesForSixteenAddressesEachWithItsOwnCredit") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  constexpr int kAddresses = 16, kEach = 5;
  auto address = [](int i) { return "agent://acme/many/worker-" + std::to_string(i); };
  auto sender = daemon.Connect();
  for (int i = 0; i < kAddresses; ++i) {
    for (int n = 0; n < kEach; ++n) REQUIRE(sender->Send(DoubleWork(n, address(i))).ok());
  }
  // One connection registers for all sixteen, credit 1 each, and completes every delivery
  // at once. (The daemon kept one registration per connection before: 12 came, then none.)
  auto conn = Connection::Open(daemon.client_options());
  REQUIRE(conn.ok());
  for (int i = 0; i < kAddresses; ++i) {
    REQUIRE((*conn)
                ->Call("receive",
                       [&](MsgWriter& w) {
                         w.Field("address", address(i));
                         w.Field("credit", uint64_t{1});
                       })
                .ok());
  }
  std::map<std::string, int> per_address;
  int completed = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (completed < kAddresses * kEach && std::chrono::steady_clock::now() < until) {
    auto push = (*conn)->NextPush(std::chrono::milliseconds(500));
    REQUIRE(push.ok());
    if (!push->has_value()) continue;
    const msgpack::object* body = (*push)->reply.body().Find("intent");
    REQUIRE(body != nullptr);
    auto intent = ReadIntent(*body);
    REQUIRE(intent.ok());
    ++per_address[intent->to_agent];
    REQUIRE((*conn)
                ->Call("complete",
                       [&](MsgWriter& w) {
                         w.Field("intent_id", intent->intent_id);
                         w.Field("attempt", uint64_t{intent->delivery_attempt});
                       })
                .ok());
    ++completed;
  }
  CHECK(completed == kAddresses * kEach);
  REQUIRE(per_address.size() == kAddresses);
  for (const auto& [to, n] : per_address) CHECK(n == kEach);
  auto status = sender->NodeStatus();
  REQUIRE(status.ok());
  CHECK((*status)["receivers"].size() == kAddresses);
}

TEST_CASE("HeartbeatsKeepALongHandlersLeaseAlive") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  SendRequest req = Work(1);
  req.lease = std::chrono::milliseconds(500);
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());

  AgentOptions options;
  options.address = kWorker;
  options.client = daemon.client_options();
  auto agent = Agent::Connect(options);
  REQUIRE(agent.ok());
  std::thread run([&] {
    CHECK((*agent)
              ->Run([&](Task& task) {
                // Work for four leases; only heartbeats keep the intent ours.
                std::this_thread::sleep_for(std::chrono::milliseconds(2000));
                CHECK_FALSE(task.lease_lost());
                (*agent)->Stop();
                return Outcome::Complete(Json{{"attempt", task.attempt()}});
              })
              .ok());
  });
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  run.join();
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->delivery_attempt == 1);
  CHECK(done->result["attempt"] == 1);
  auto events = client->Events(receipt->intent_id);
  REQUIRE(events.ok());
  for (const Event& e : *events) CHECK(e.event_type != "intent.lease_expired");
}

TEST_CASE("AHandlerThatThrowsIsRetriedThenFailsWithItsLastError") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  SendRequest req = Work(1);
  req.max_attempts = 2;
  req.retry_initial = std::chrono::milliseconds(100);
  auto receipt = client->Send(req);
  REQUIRE(receipt.ok());
  AgentPool agents(daemon, kWorker, 1,
                   [](Task&) -> Outcome { throw std::runtime_error("model returned garbage"); });
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kFailed);
  CHECK(done->delivery_attempt == 2);
  REQUIRE(done->error.has_value());
  CHECK(done->error->code == "delivery_attempts_exhausted");
  REQUIRE(done->last_error.has_value());
  CHECK(done->last_error->code == "handler_exception");
  CHECK(done->last_error->message == "model returned garbage");
  CHECK(agents.Handled(receipt->intent_id) == 2);
}

TEST_CASE("AnAgentAsksAHumanThroughTheClientAndResumesWithTheDecision") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  std::atomic<int> runs{0};
  AgentPool agents(daemon, kWorker, 1, [&](Task& task) {
    ++runs;
    if (!task.approval()) {
      CHECK(task.Checkpoint({{"drafted", true}}).ok());
      CHECK(task.RequestApproval("Send the email?", {"send", "hold"}).ok());
      return Outcome::Complete("ignored: the intent waits for the human");
    }
    return Outcome::Complete(Json{{"decision", task.approval()->decision},
                                  {"by", task.approval()->decided_by},
                                  {"checkpoint", task.checkpoint()}});
  });
  auto receipt = client->Send(Work(1));
  REQUIRE(receipt.ok());
  REQUIRE(WaitFor(
      [&] {
        auto in = client->Get(receipt->intent_id);
        return in.ok() && in->status == IntentStatus::kWaiting && in->waiting_reason == "HUMAN";
      },
      std::chrono::seconds(20)));
  auto waiting = client->Get(receipt->intent_id);
  REQUIRE(waiting.ok());
  CHECK(waiting->approval->question == "Send the email?");
  CHECK(client->Approve(receipt->intent_id, "fine", "hold", "human:dee").ok());
  auto done = client->Wait(receipt->intent_id, std::chrono::seconds(30));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->result["decision"] == "hold");
  CHECK(done->result["by"] == "human:dee");
  CHECK(done->result["checkpoint"] == Json{{"drafted", true}});
  CHECK(runs.load() == 2);
}

}  // namespace
}  // namespace handoff::testing
