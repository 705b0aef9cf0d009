// Peer links carry several messages per frame to a peer that says it reads batches, and one
// per frame to a peer that does not (a node from before batches); likewise intents and updates
// go compact only to a peer that says it reads them. The peer here is the test: a ROUTER where
// the node's [[peers]] entry for node-c points.

#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <zmq.hpp>

#include "handoff/client.h"
#include "support/agent_pool.h"
#include "support/cluster.h"
#include "support/peer_messages.h"
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
                   int count, size_t* compact) {
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
    // Whichever form it came in, it reads as the intent sent, its payload whole.
    if (msg->body->type == msgpack::type::ARRAY) ++*compact;
    IntentRecord r;
    const msgpack::object *payload = nullptr, *checkpoint = nullptr;
    REQUIRE(wire::ReadForwardedIntent(*msg->body, &r, &payload, &checkpoint).ok());
    CHECK(r.to_agent == kThere);
    CHECK(r.origin_node == "node-a");
    REQUIRE(payload != nullptr);
    auto m = MapReader::From(*payload, "payload");
    REQUIRE(m.ok());
    int64_t n = -1;
    CHECK(m->OptInt("n", &n).ok());
    CHECK(n == first + i);  // in order, each once
  }
  return seqs.size();
}

void RunAgainst(bool peer_reads_batches, bool peer_reads_compact = false) {
  TempDir dir;
  Cluster cluster(dir, {{"node-a", {}, ""}, {"node-c", {"agent://acme/cee/*"}, ""}});
  Daemon& a = cluster["node-a"];
  a.Start();
  zmq::context_t context;
  RawPeerServer c(context, cluster.peer_endpoint("node-c"), &cluster.key("node-c"),
                  peer_reads_batches, peer_reads_compact);
  size_t compact = 0;
  // The first message tells node-a (by its ack) whether node-c reads batches.
  CHECK(SendAndRead(context, a, c, 0, 1, &compact) == 1);
  // Then bursts, each sent within one turn: a node batches them for a peer that reads batches.
  // A burst can race the first ack, so a few are allowed before one must have been batched.
  size_t read = 0;
  for (int round = 0; round < 5; ++round) {
    read += SendAndRead(context, a, c, 1 + 200 * round, 200, &compact);
    if (peer_reads_batches && c.batches() > 0) break;
  }
  CHECK(read >= 200);
  if (peer_reads_batches) {
    CHECK(c.batches() > 0);
    CHECK(c.frames() < read + 1);  // fewer frames than messages
  } else {
    CHECK(c.batches() == 0);  // an old node never gets a batch it cannot read
  }
  if (peer_reads_compact) {
    CHECK(compact > 0);  // once its first ack said so
  } else {
    CHECK(c.compact_frames() == 0);  // nor a compact intent
    CHECK(compact == 0);
  }
}

TEST_CASE("ALinkBatchesForAPeerThatReadsBatches") { RunAgainst(true); }

TEST_CASE("ALinkSendsOneMessagePerFrameToAPeerFromBeforeBatches") { RunAgainst(false); }

TEST_CASE("ALinkSendsCompactIntentsToAPeerThatReadsThem") { RunAgainst(true, true); }

Json PeerStatus(const Daemon& d, const std::string& name) {
  auto status = d.Connect()->NodeStatus();
  REQUIRE(status.ok());
  for (const Json& p : (*status)["peers"]) {
    if (p.value("name", "") == name) return p;
  }
  FAIL("no peer " << name << " in " << status->dump());
  return Json();
}

// node-b hosts the agent; the test is node-c, the origin: it forwards intents to node-b and
// reads node-b's updates as a node that reads compact updates, or as one from before them.
void UpdatesTo(bool peer_reads_compact) {
  PlayedNodeC played(/*batches=*/true, peer_reads_compact);
  RawPeerServer& c = played.c;

  // One intent at a time, each read to its end: the first goes out before node-c has acked
  // anything (node-b does not know yet what node-c reads), the rest after.
  size_t compact_bodies = 0, map_bodies = 0;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    const IntentRecord intent = ForwardableIntent(PlayedNodeC::kRemote, "node-c");
    played.to_b.Send(IntentFrame("node-c", seq, intent));
    uint32_t events_read = 0;
    bool completed = false;
    while (!completed) {
      auto msg = c.NextData("node-c", kWait);
      REQUIRE(msg.has_value());
      REQUIRE(msg->kind == wire::peer_kind::kUpdate);
      (msg->body->type == msgpack::type::ARRAY ? compact_bodies : map_bodies)++;
      auto update = wire::ReadRemoteUpdate(*msg->body, msg->from);
      REQUIRE(update.ok());
      REQUIRE(update->id == intent.id);
      // Every event once, in order, recorded on node-b.
      for (const EventRecord& e : update->events) {
        CHECK(e.seq == ++events_read);
        CHECK(e.node == "node-b");
        CHECK(e.id == intent.id);
      }
      CHECK(update->remote_seq == events_read);
      completed = update->status == IntentStatus::kCompleted;
      if (completed) {
        auto result = Unpack(update->result);
        REQUIRE(result.ok());
        auto m = MapReader::From(result->get(), "result");
        REQUIRE(m.ok());
        int64_t doubled = 0;
        CHECK(m->OptInt("double", &doubled).ok());
        CHECK(doubled == 2);  // IntentFrame's payload is {"n": 1}
      }
    }
  }
  const Json link = PeerStatus(played.b(), "node-c");
  if (peer_reads_compact) {
    CHECK(compact_bodies > 0);  // once its acks said so
    CHECK(link.value("compact_messages", false));
  } else {
    // Never one it cannot read: each rewritten as a map on its way out.
    CHECK(c.compact_frames() == 0);
    CHECK(compact_bodies == 0);
    CHECK_FALSE(link.value("compact_messages", true));
    CHECK(link.value("rewritten", uint64_t{0}) >= map_bodies);
  }
  // At least one update an intent: its agent acks and completes within node-b's update_delay,
  // so the news of its delivery and start goes with the completion.
  CHECK(map_bodies + compact_bodies >= 3);
}

TEST_CASE("ALinkSendsCompactUpdatesToAPeerThatReadsThem") { UpdatesTo(true); }

TEST_CASE("ALinkSendsUpdatesAsMapsToAPeerFromBeforeCompactUpdates") { UpdatesTo(false); }

}  // namespace
}  // namespace handoff::testing
