// Hostile input to a running handoffd over a raw ZeroMQ socket and over its stream socket: every
// kind of bad frame gets an error reply, changes nothing stored, and a normal send afterwards
// works.

#include <doctest/doctest.h>

#include <cmath>
#include <zmq.hpp>

#include "base/msgpack_io.h"
#include "handoff/agent.h"
#include "handoff/client.h"
#include "net/stream.h"
#include "support/daemon.h"
#include "wire/agent_protocol.h"

namespace handoff::testing {
namespace {

// One connection that sends whatever it is given: a ZeroMQ DEALER, or the daemon's stream
// socket (where a message is one frame, so there are no multi-frame messages to send).
class RawConnection {
 public:
  RawConnection(const std::string& endpoint, bool stream)
      : socket_(context_, zmq::socket_type::dealer) {
    if (stream) {
      auto client = net::StreamClient::Connect(net::StreamPathFor(endpoint), 64 << 20);
      REQUIRE(client.ok());
      stream_ = std::move(*client);
      return;
    }
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  bool stream() const { return stream_ != nullptr; }

  void SendFrames(const std::vector<std::string>& frames) {
    if (stream_) {
      REQUIRE(frames.size() == 1);
      REQUIRE(stream_->Send(frames[0]).ok());
      return;
    }
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      socket_.send(zmq::buffer(frames[i]), flags);
    }
  }

  // The next reply (bounded wait); fails the test if none comes.
  wire::Reply Receive() {
    std::string bytes;
    if (stream_) {
      auto frame = stream_->Receive(std::chrono::seconds(10));
      REQUIRE(frame.ok());
      REQUIRE(frame->has_value());
      bytes = std::move(**frame);
    } else {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      REQUIRE(zmq::poll(&item, 1, std::chrono::seconds(10)) == 1);
      zmq::message_t message;
      REQUIRE(socket_.recv(message, zmq::recv_flags::none));
      bytes = message.to_string();
    }
    auto reply = wire::DecodeReply(bytes);
    REQUIRE(reply.ok());
    return std::move(reply).value();
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::unique_ptr<net::StreamClient> stream_;
};

// A request map with the envelope and whatever `fill` adds.
std::string Request(std::string_view op, uint64_t rid,
                    const std::function<void(MsgWriter&)>& fill = nullptr) {
  wire::RequestBuilder b(op, rid);
  if (fill) fill(b.w());
  return b.Finish();
}

std::string Packed(const std::function<void(MsgWriter&)>& fill) {
  MsgWriter w;
  fill(w);
  return w.str();
}

size_t IntentCount(Client& client) {
  ListOptions all;
  all.limit = 10000;
  auto list = client.List(all);
  REQUIRE(list.ok());
  return list->size();
}

TEST_CASE("HostileFramesGetErrorRepliesChangeNothingAndTheDaemonKeepsServing") {
  bool stream = false;
  SUBCASE("zeromq") {}
  SUBCASE("stream") { stream = true; }
  CAPTURE(stream);
  TempDir dir;
  Daemon daemon(dir, "node-a", "max_payload_bytes = \"4KiB\"");
  daemon.Start();
  auto client = daemon.Connect();
  RawConnection raw(daemon.endpoint(), stream);

  const std::string valid_payload = Packed([](MsgWriter& w) {
    w.BeginMap();
    w.Field("k", "v");
    w.EndMap();
  });
  auto valid_send = [&](uint64_t rid) {
    return Request("send", rid, [&](MsgWriter& w) {
      w.Field("intent_type", "intent.ok.v1");
      w.Field("to_agent", "agent://acme/test/worker");
      w.FieldRaw("payload", valid_payload);
    });
  };

  struct Case {
    const char* name;
    std::vector<std::string> frames;
    Code code;
    uint64_t rid;  // the rid the error reply must carry (0 when unreadable)
    const char* message_part;
  };
  const std::string deep = [] {
    std::string s;
    for (int i = 0; i < 200; ++i) s.push_back(static_cast<char>(0x91));  // array of 1, nested
    s.push_back(static_cast<char>(0xc0));
    return s;
  }();
  std::vector<Case> cases = {
      {"garbage bytes", {"this is not msgpack at all"}, Code::kInvalidArgument, 0, "msgpack"},
      {"empty frame", {""}, Code::kInvalidArgument, 0, "empty"},
      {"truncated msgpack", {std::string("\x85\xa1v", 3)}, Code::kInvalidArgument, 0, "msgpack"},
      // Readable up to its rid: the error carries it, so the sender hears at once.
      {"trailing bytes", {valid_send(5) + "xx"}, Code::kInvalidArgument, 5, "trailing"},
      {"two frames", {valid_send(6), valid_send(6)}, Code::kInvalidArgument, 0, "one frame"},
      {"not a map",
       {Packed([](MsgWriter& w) { w.String("send"); })},
       Code::kInvalidArgument,
       0,
       "map"},
      {"nested too deep", {deep}, Code::kInvalidArgument, 0, "deep"},
      {"a payload nested too deep",
       {Request("send", 12,
                [&](MsgWriter& w) {
                  w.Field("intent_type", "intent.test.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.FieldRaw("payload", deep);
                })},
       Code::kInvalidArgument,
       12,
       "deep"},
      {"no version",
       {Packed([](MsgWriter& w) {
         w.BeginMap();
         w.Field("op", "send");
         w.Field("rid", uint64_t{7});
         w.EndMap();
       })},
       Code::kInvalidArgument,
       7,
       "'v'"},
      {"future version",
       {Packed([](MsgWriter& w) {
         w.BeginMap();
         w.Field("v", uint64_t{99});
         w.Field("op", "send");
         w.Field("rid", uint64_t{8});
         w.EndMap();
       })},
       Code::kInvalidArgument,
       8,
       "version"},
      {"unknown op", {Request("explode", 9)}, Code::kInvalidArgument, 9, "unknown operation"},
      {"wrong type",
       {Request("send", 10,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", int64_t{12});
                })},
       Code::kInvalidArgument,
       10,
       "to_agent"},
      {"payload not a map",
       {Request("send", 11,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.Field("payload", "text");
                })},
       Code::kInvalidArgument,
       11,
       "payload"},
      // Payloads must be showable as JSON: what is stored can always be read back.
      {"payload with an integer key",
       {Request("send", 20,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.FieldRaw("payload", std::string("\x81\x01\xa1x", 4));
                })},
       Code::kInvalidArgument,
       20,
       "payload: a map key is an integer"},
      {"payload with binary",
       {Request("send", 21,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.FieldRaw("payload", std::string("\x81\xa1k\xc4\x01\x00", 6));
                })},
       Code::kInvalidArgument,
       21,
       "payload.k: binary"},
      {"payload with an extension value",
       {Request("send", 22,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.FieldRaw("payload", std::string("\x81\xa1k\xd4\x01\x00", 6));
                })},
       Code::kInvalidArgument,
       22,
       "payload.k: msgpack extension"},
      {"payload with NaN",
       {Request("send", 23,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.Key("payload");
                  w.BeginMap();
                  w.Field("x", std::nan(""));
                  w.EndMap();
                })},
       Code::kInvalidArgument,
       23,
       "payload.x: NaN"},
      {"payload with bad UTF-8",
       {Request("send", 24,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.Key("payload");
                  w.BeginMap();
                  w.Field("x", "caf\xe9");
                  w.EndMap();
                })},
       Code::kInvalidArgument,
       24,
       "payload.x: a string that is not valid UTF-8"},
      {"malformed address",
       {Request("send", 12,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://ACME/test");
                })},
       Code::kInvalidArgument,
       12,
       "agent address"},
      {"bad intent type",
       {Request("send", 13,
                [](MsgWriter& w) {
                  w.Field("intent_type", "DROP TABLE");
                  w.Field("to_agent", "agent://acme/test/worker");
                })},
       Code::kInvalidArgument,
       13,
       "intent type"},
      {"oversized payload",
       {Request("send", 14,
                [](MsgWriter& w) {
                  w.Field("intent_type", "intent.ok.v1");
                  w.Field("to_agent", "agent://acme/test/worker");
                  w.Key("payload");
                  w.BeginMap();
                  w.Field("blob", std::string(10000, 'x'));
                  w.EndMap();
                })},
       Code::kInvalidArgument,
       14,
       "max_payload_bytes"},
      {"malformed id",
       {Request("get", 15, [](MsgWriter& w) { w.Field("intent_id", "nope"); })},
       Code::kInvalidArgument,
       15,
       "intent id"},
      {"unknown id",
       {Request(
           "complete", 16,
           [](MsgWriter& w) { w.Field("intent_id", "01a20b67-dfc4-7000-9c02-2173baa0aecf"); })},
       Code::kNotFound,
       16,
       "no intent"},
      {"receive for a bad address",
       {Request("receive", 17, [](MsgWriter& w) { w.Field("address", "agent://a/b"); })},
       Code::kInvalidArgument,
       17,
       "agent address"},
  };

  size_t expected = 0;
  uint64_t next_rid = 1000;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    if (raw.stream() && c.frames.size() > 1) continue;  // a stream frame is one message
    raw.SendFrames(c.frames);
    wire::Reply reply = raw.Receive();
    CHECK(reply.rid == c.rid);
    CHECK(reply.status.code() == c.code);
    CHECK(reply.status.message().find(c.message_part) != std::string::npos);
    CHECK(IntentCount(*client) == expected);

    // The daemon still serves, on the same connection and on others.
    raw.SendFrames({valid_send(next_rid)});
    wire::Reply ok = raw.Receive();
    CHECK(ok.rid == next_rid);
    CHECK(ok.status.ok());
    ++next_rid;
    ++expected;
    SendRequest req;
    req.to_agent = "agent://acme/test/worker";
    req.intent_type = "intent.ok.v1";
    CHECK(client->Send(req).ok());
    ++expected;
  }
  CHECK(IntentCount(*client) == expected);
  CHECK(daemon.running());
  CHECK(daemon.Log().find("rejected") != std::string::npos);
}

TEST_CASE("CheckpointsAndResultsMustBeShowableAsJson") {
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = "agent://acme/test/worker";
  req.intent_type = "intent.ok.v1";
  auto sent = client->Send(req);
  REQUIRE(sent.ok());

  AgentOptions options;
  options.client.endpoint = daemon.endpoint();
  options.address = req.to_agent;
  auto agent = Agent::Connect(options);
  REQUIRE(agent.ok());
  Status binary_checkpoint, nan_checkpoint, binary_result;
  Status result = (*agent)->Run([&](Task& task) {
    binary_checkpoint = task.Checkpoint({{"blob", Json::binary({1, 2, 3})}});
    nan_checkpoint = task.Checkpoint({{"x", std::nan("")}});
    binary_result = client->Complete(task.intent_id(), task.attempt(), {{"b", Json::binary({0})}});
    (*agent)->Stop();
    return Outcome::Complete({{"ok", true}});
  });
  REQUIRE(result.ok());
  CHECK(binary_checkpoint.IsInvalidArgument());
  CHECK(binary_checkpoint.message().find("state.blob: binary") != std::string::npos);
  CHECK(nan_checkpoint.IsInvalidArgument());
  CHECK(nan_checkpoint.message().find("state.x: NaN") != std::string::npos);
  CHECK(binary_result.IsInvalidArgument());
  CHECK(binary_result.message().find("result.b: binary") != std::string::npos);
  // Nothing refused was stored; the result the agent then gave was.
  auto done = client->Wait(sent->intent_id, std::chrono::seconds(10));
  REQUIRE(done.ok());
  CHECK(done->status == IntentStatus::kCompleted);
  CHECK(done->checkpoint.is_null());
  CHECK(done->result == Json{{"ok", true}});
}

TEST_CASE("AFloodOfGarbageDoesNotStopTheDaemon") {
  bool stream = false;
  SUBCASE("zeromq") {}
  SUBCASE("stream") { stream = true; }
  CAPTURE(stream);
  TempDir dir;
  Daemon daemon(dir);
  daemon.Start();
  RawConnection raw(daemon.endpoint(), stream);
  for (int i = 0; i < 2000; ++i) raw.SendFrames({std::string(static_cast<size_t>(i % 50), '\xc1')});
  for (int i = 0; i < 2000; ++i) (void)raw.Receive();
  auto client = daemon.Connect();
  SendRequest req;
  req.to_agent = "agent://acme/test/worker";
  req.intent_type = "intent.ok.v1";
  CHECK(client->Send(req).ok());
  CHECK(daemon.running());
}

}  // namespace
}  // namespace handoff::testing
