// The fixture of the forwarding tests: two nodes with the network taken out. Each node's
// outbox is read and its messages applied to the other node's engine by hand, so
// retransmission, reordering, loss and forgery can be staged exactly. Real LMDB stores, a
// manual clock.

#ifndef HANDOFF_TESTS_NODE_FORWARDING_FIXTURE_H_
#define HANDOFF_TESTS_NODE_FORWARDING_FIXTURE_H_

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/engine.h"
#include "node/peer_service.h"
#include "support/temp_dir.h"

namespace handoff::node {

using storage::Store;

inline constexpr const char* kRemoteAgent = "agent://acme/prod/worker";

// One node of the pair: a real store, an Engine, a PeerService.
struct TestNode {
  TestNode(const std::string& name, const Clock& clock, std::vector<RouteOptions> routes,
           uint64_t max_payload_bytes = 1 << 20, int64_t update_delay_ms = 0)
      : clock_(clock) {
    auto opened = Store::Open(dir.Sub(name), {}, name);
    REQUIRE(opened.ok());
    store = std::move(opened.value());
    options_.node_name = name;
    options_.routes = std::move(routes);
    options_.max_payload_bytes = max_payload_bytes;
    options_.update_delay_ms = update_delay_ms;
    Restart();
  }

  // A new Engine over the same store, as handoffd has after a restart.
  void Restart() {
    peers.reset();
    engine = std::make_unique<Engine>(*store, clock_, options_);
    REQUIRE(engine->Recover().ok());
    peers = std::make_unique<PeerService>(*engine, *store);
  }

  Status Write(const std::function<Status(Txn&, Batch&)>& fn) {
    auto txn = store->BeginWrite();
    REQUIRE(txn.ok());
    Batch batch;
    Status s = fn(*txn, batch);
    if (s.ok()) s = engine->Flush(*txn, batch);
    if (s.ok()) s = txn->Commit();
    if (!s.ok()) {
      txn->Abort();
      REQUIRE(engine->Rollback().ok());  // as handoffd does after a failed turn
      return s;
    }
    engine->Commit(batch);
    last = batch;
    return Status::OK();
  }

  struct Shipped {
    uint64_t seq = 0;
    std::string frame;
  };
  // The peer's outbox, copied out of the read transaction.
  std::vector<Shipped> Outbox(const std::string& peer) {
    auto txn = store->BeginRead();
    REQUIRE(txn.ok());
    std::vector<storage::OutboxEntry> entries;
    REQUIRE(store->ReadOutbox(*txn, peer, 1, 10000, &entries).ok());
    std::vector<Shipped> copied;
    for (const storage::OutboxEntry& e : entries) copied.push_back({e.seq, std::string(e.frame)});
    return copied;
  }

  // Applies one frame as the peer service would; returns the acked seq.
  uint64_t Receive(const std::string& frame) {
    auto msg = wire::DecodePeerMessage(frame);
    REQUIRE(msg.ok());
    uint64_t acked = 0;
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              auto r = peers->Apply(txn, batch, *msg);
              if (r.ok()) acked = *r;
              return r.status();
            }).ok());
    return acked;
  }

  IntentView Get(const IntentId& id) {
    auto txn = store->BeginRead();
    REQUIRE(txn.ok());
    IntentView view;
    REQUIRE(engine->Get(*txn, id, &view).ok());
    return view;
  }

  std::vector<EventRecord> Events(const IntentId& id, uint32_t since = 0) {
    auto txn = store->BeginRead();
    REQUIRE(txn.ok());
    std::vector<EventRecord> events;
    REQUIRE(engine->Events(*txn, id, since, 1000, &events).ok());
    return events;
  }

  const Clock& clock_;
  EngineOptions options_;
  testing::TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<PeerService> peers;
  Batch last;
};

// Moves every outbox entry of `from` towards `to` that `to` has not applied yet; returns the
// last ack, as a lossless link would.
inline uint64_t Pump(TestNode& from, TestNode& to, const std::string& to_name) {
  uint64_t acked = 0;
  for (const auto& entry : from.Outbox(to_name)) acked = to.Receive(entry.frame);
  return acked;
}

// The same value with minimal msgpack headers, for comparing stored bytes.
inline std::string Canonical(std::string_view bytes) {
  auto handle = Unpack(bytes);
  REQUIRE(handle.ok());
  return Pack(handle->get());
}

inline std::string Payload() {
  MsgWriter w;
  w.BeginMap();
  w.Field("records", int64_t{3});
  w.EndMap();
  return w.str();
}

// Sends an intent from node `a` to kRemoteAgent, which a's routes give to another node.
inline IntentId SendRemote(TestNode& a) {
  IntentId id;
  REQUIRE(a.Write([&](Txn& txn, Batch& batch) {
             SendParams p;
             p.intent_type = "intent.remote.v1";
             p.from_agent = "agent://acme/lab/sender";
             p.to_agent = kRemoteAgent;
             p.payload = Payload();
             p.correlation_id = "corr-1";
             auto r = a.engine->Send(txn, batch, p);
             if (r.ok()) id = r->record->id;
             return r.status();
           }).ok());
  return id;
}

struct Pair {
  ManualClock clock;
  TestNode a{"node-a", clock, {{"agent://acme/prod/*", "node-b"}}};
  TestNode b{"node-b", clock, {}};

  IntentId Send() { return SendRemote(a); }
};

}  // namespace handoff::node

#endif  // HANDOFF_TESTS_NODE_FORWARDING_FIXTURE_H_
