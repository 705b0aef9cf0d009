// Peer links carry several messages per frame to a peer that says it reads batches, and one
// per frame to a peer that does not (a node from before batches). The peer here is the test:
// a ROUTER where node-a's [[peers]] entry for node-c points.

#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <zmq.hpp>

#include "handoff/client.h"
#include "support/cluster.h"
#include "support/raw_peer.h"
#include "wire/agent_protocol.h"
#include "wire/peer_protocol.h"

namespace handoff::testing {
namespace {

constexpr const char* kThere = "agent://acme/cee/worker";  // hosted by node-c
constexpr auto kWait = std::chrono::seconds(20);

// Sends `count` intents from node-a to node-c's agent in one batch of requests (so that they
// are stored in one turn and reach the link together), then reads them all at the raw node-c,
// in order and each once. Returns how many it read.
size_t SendAndRead(zmq::context_t& context, const Daemon& a, RawPeerServer& server, int first,
                   int count) {
  zmq::socket_t agent(context, zmq::socket_type::dealer);
  agent.set(zmq::sockopt::linger, 0);
  agent.connect(a.endpoint());
  std::vector<std::string> sends;
  for (int i = 0; i < count; ++i) {
    wire::RequestBuilder b("send", static_cast<uint64_t>(i + 1), 2);
    b.w().Field("to_agent", kThere);
    b.w().Field("intent_type", "intent.batch.v1");
    b.w().Key("payload");
    b.w().BeginMap();
    b.w().Field("n", static_cast<int64_t>(first + i));
    b.w().EndMap();
    sends.push_back(b.Finish());
  }
  std::vector<std::string_view> views(sends.begin(), sends.end());
  agent.send(zmq::buffer(wire::EncodeBatch(views)), zmq::send_flags::none);
  std::set<uint64_t> seqs;
  for (int i = 0; i < count; ++i) {
    auto msg = server.NextData("node-c", kWait);
    REQUIRE(msg.has_value());
    CHECK(msg->kind == "intent");
    CHECK(msg->from == "node-a");
    seqs.insert(msg->seq);
  }
  return seqs.size();
}

void RunAgainst(bool peer_reads_batches) {
  TempDir dir;
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-c", {"agent://acme/cee/*"}, ""}});
  Daemon& a = cluster["node-a"];
  a.Start();
  zmq::context_t context;
  RawPeerServer c(context, cluster.peer_endpoint("node-c"), &cluster.key("node-c"),
                  peer_reads_batches);
  // The first message tells node-a (by its ack) whether node-c reads batches.
  CHECK(SendAndRead(context, a, c, 0, 1) == 1);
  // Then bursts, each sent within one turn: a node batches them for a peer that reads batches.
  // A burst can race the first ack, so a few are allowed before one must have been batched.
  size_t read = 0;
  for (int round = 0; round < 5; ++round) {
    read += SendAndRead(context, a, c, 1 + 200 * round, 200);
    if (peer_reads_batches && c.batches() > 0) break;
  }
  CHECK(read >= 200);
  if (peer_reads_batches) {
    CHECK(c.batches() > 0);
    CHECK(c.frames() < read + 1);  // fewer frames than messages
  } else {
    CHECK(c.batches() == 0);  // an old node never gets a batch it cannot read
  }
}

TEST_CASE("ALinkBatchesForAPeerThatReadsBatches") { RunAgainst(true); }

TEST_CASE("ALinkSendsOneMessagePerFrameToAPeerFromBeforeBatches") { RunAgainst(false); }

}  // namespace
}  // namespace handoff::testing
