// The agent stream socket ([node] agent_stream) of a real handoffd: where it is, who may use
// it, that clients use it and fall back to ZeroMQ, that it rides through a restart, and what a
// closed connection or a hostile one does.

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <thread>

#include "base/msgpack_io.h"
#include "handoff/agent.h"
#include "handoff/client.h"
#include "net/stream.h"
#include "support/daemon.h"
#include "support/unix_socket.h"
#include "wire/agent_protocol.h"

namespace handoff::testing {
namespace {

constexpr const char* kWorker = "agent://acme/test/worker";

std::string StreamPath(const Daemon& daemon) { return net::StreamPathFor(daemon.endpoint()); }

SendRequest Work(int n) {
  SendRequest req;
  req.to_agent = kWorker;
  req.intent_type = "intent.stream.v1";
  req.payload = {{"n", n}};
  return req;
}

// An agent speaking the protocol itself on the stream socket.
class RawAgent {
 public:
  explicit RawAgent(const Daemon& daemon) {
    auto client = net::StreamClient::Connect(StreamPath(daemon), 64 << 20);
    REQUIRE(client.ok());
    stream_ = std::move(*client);
  }
  void Send(std::string_view op, const std::function<void(MsgWriter&)>& fill) {
    wire::RequestBuilder b(op, next_rid_++);
    fill(b.w());
    REQUIRE(stream_->Send(b.Finish()).ok());
  }
  // The next reply or push (bounded wait); fails the test if none comes.
  wire::Reply Next() {
    auto frame = stream_->Receive(std::chrono::seconds(10));
    REQUIRE(frame.ok());
    REQUIRE(frame->has_value());
    auto reply = wire::DecodeReply(**frame);
    REQUIRE(reply.ok());
    return std::move(reply).value();
  }
  // The next delivery push's intent id and attempt, skipping replies.
  std::pair<std::string, uint64_t> NextDelivery() {
    for (int i = 0; i < 10; ++i) {
      wire::Reply r = Next();
      if (r.push != "deliver") {
        CHECK(r.status.ok());
        continue;
      }
      auto intent = MapReader::From(*r.body().Find("intent"), "intent");
      REQUIRE(intent.ok());
      std::string id;
      uint64_t attempt = 0;
      REQUIRE(intent->String("intent_id", &id).ok());
      REQUIRE(intent->OptUint("delivery_attempt", &attempt).ok());
      return {id, attempt};
    }
    FAIL("no delivery");
    return {};
  }

 private:
  std::unique_ptr<net::StreamClient> stream_;
  uint64_t next_rid_ = 1;
};

TEST_CASE("ClientsUseTheStreamSocketBesideTheAgentSocketAndZeroMqWhenAsked") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  const std::string path = StreamPath(daemon);
  CHECK(path == daemon.endpoint().substr(6) + ".stream");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);  // as the agent socket: this user only

  auto stream = daemon.Connect();
  CHECK(stream->transport() == "stream");
  ClientOptions zmq_options = daemon.client_options();
  zmq_options.stream = false;
  auto zmq = Client::Connect(zmq_options);
  REQUIRE(zmq.ok());
  CHECK((*zmq)->transport() == "zeromq");

  // The same daemon behind both: what one sends the other sees.
  auto sent = stream->Send(Work(1));
  REQUIRE(sent.ok());
  auto got = (*zmq)->Get(sent->intent_id);
  REQUIRE(got.ok());
  CHECK(got->payload == Json{{"n", 1}});
  auto status = stream->NodeStatus();
  REQUIRE(status.ok());
  CHECK((*status)["agent_stream"] == path);
  CommandResult text = daemon.Ctl({"status"});
  CHECK(text.out.find("agent_stream:") != std::string::npos);

  // A worker over the stream completes what a ZeroMQ client waits for, and the other way round.
  AgentOptions options;
  options.client = daemon.client_options();
  options.address = kWorker;
  auto agent = Agent::Connect(options);
  REQUIRE(agent.ok());
  std::thread worker([&] {
    int done = 0;
    Status s = (*agent)->Run([&](Task& task) {
      if (++done == 3) (*agent)->Stop();
      return Outcome::Complete({{"twice", task.payload()["n"].get<int>() * 2}});
    });
    CHECK(s.ok());
  });
  auto first = (*zmq)->Wait(sent->intent_id, std::chrono::seconds(20));
  REQUIRE(first.ok());
  CHECK(first->result == Json{{"twice", 2}});
  auto second = stream->SendAndWait(Work(2), std::chrono::seconds(20));
  REQUIRE(second.ok());
  CHECK(second->result == Json{{"twice", 4}});
  auto third = (*zmq)->SendAndWait(Work(3), std::chrono::seconds(20));
  REQUIRE(third.ok());
  CHECK(third->result == Json{{"twice", 6}});
  worker.join();

  // A clean stop leaves neither socket behind.
  CHECK(daemon.Stop() == 0);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(daemon.endpoint().substr(6)));
}

TEST_CASE("WithAgentStreamOffThereIsNoStreamSocketAndClientsUseZeroMq") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "agent_stream = false");
  daemon.Start();
  CHECK_FALSE(std::filesystem::exists(StreamPath(daemon)));
  auto client = daemon.Connect();
  CHECK(client->transport() == "zeromq");
  CHECK(client->Send(Work(1)).ok());
  auto status = client->NodeStatus();
  REQUIRE(status.ok());
  CHECK_FALSE(status->contains("agent_stream"));
}

TEST_CASE("AStreamClientRidesThroughADaemonKilledAndRestarted") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  REQUIRE(client->transport() == "stream");
  auto sent = client->Send(Work(1));
  REQUIRE(sent.ok());
  daemon.Kill();  // its socket files stay behind, stale
  daemon.Start();
  // The same client, its connection broken: it reconnects and the intent is there.
  auto got = client->Get(sent->intent_id);
  REQUIRE(got.ok());
  CHECK(got->payload == Json{{"n", 1}});
  CHECK(client->transport() == "stream");
  CHECK(client->Send(Work(2)).ok());
}

TEST_CASE("AClosedConnectionIsForgottenAtOnceAndWhatItHeldKeepsItsLease") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "receiver_timeout = \"1h\"");
  daemon.Start();
  auto client = daemon.Connect();
  SendRequest req = Work(1);
  req.lease = std::chrono::hours(1);
  auto sent = client->Send(req);
  REQUIRE(sent.ok());
  auto receivers = [&] {
    auto agents = client->Agents();
    REQUIRE(agents.ok());
    for (const Json& row : (*agents)["agents"]) {
      if (row["address"] == kWorker) return row["receivers"].get<int>();
    }
    return 0;
  };
  uint64_t attempt = 0;
  {
    RawAgent first(daemon);
    first.Send("receive", [](MsgWriter& w) {
      w.Field("address", kWorker);
      w.Field("credit", uint64_t{1});
    });
    auto [id, a] = first.NextDelivery();
    CHECK(id == sent->intent_id);
    attempt = a;
    CHECK(receivers() == 1);
  }  // closed while it holds the intent
  // Forgotten at once (receiver_timeout is an hour), and said so.
  CHECK(WaitFor([&] { return receivers() == 0; }, std::chrono::seconds(10)));
  CHECK(daemon.Log().find("receiving agent connection(s) that closed") != std::string::npos);
  // The intent is still its holder's to finish, from another connection.
  auto got = client->Get(sent->intent_id);
  REQUIRE(got.ok());
  CHECK(got->status == IntentStatus::kDelivered);
  REQUIRE(client->Complete(sent->intent_id, static_cast<uint32_t>(attempt), {{"ok", true}}).ok());
  auto done = client->Wait(sent->intent_id, std::chrono::seconds(10));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
}

TEST_CASE("HostileBytesOnTheStreamSocketCloseOnlyTheirConnection") {
  TempDir dir;
  Daemon daemon(dir, "node-a", "max_payload_bytes = \"4KiB\"");
  daemon.Start();
  auto client = daemon.Connect();
  const std::string path = StreamPath(daemon);

  // A frame announcing 4 GiB: the connection is closed before anything of it is buffered.
  const int huge = ConnectUnixStream(path);
  REQUIRE(::write(huge, "\xff\xff\xff\xff", 4) == 4);
  CHECK(HangsUp(huge));
  ::close(huge);
  // Just over the most a request may be (twice max_payload_bytes plus 1 MiB), sent whole.
  const size_t over = 2 * 4096 + (1 << 20) + 1;
  const int big = ConnectUnixStream(path);
  char header[net::kStreamHeaderBytes];
  net::EncodeStreamHeader(static_cast<uint32_t>(over), header);
  std::string frame(header, sizeof(header));
  frame.append(over, '\x80');
  (void)::send(big, frame.data(), frame.size(), MSG_NOSIGNAL);
  CHECK(HangsUp(big));
  ::close(big);
  // A torn header, and a torn frame, then gone.
  for (std::string torn :
       {std::string("\x00\x00", 2), std::string("\x00\x00\x00\x10partial", 11)}) {
    const int fd = ConnectUnixStream(path);
    REQUIRE(::write(fd, torn.data(), torn.size()) == static_cast<ssize_t>(torn.size()));
    ::close(fd);
  }
  // Many connections opened and dropped.
  for (int i = 0; i < 300; ++i) ::close(ConnectUnixStream(path));

  // Through all of it the daemon serves, and stored nothing.
  CHECK(daemon.running());
  ListOptions all;
  auto list = client->List(all);
  REQUIRE(list.ok());
  CHECK(list->empty());
  CHECK(client->Send(Work(1)).ok());
  CHECK(daemon.Log().find("closed an agent connection") != std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
