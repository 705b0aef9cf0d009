// EngineFixture: one node's Engine over a real LMDB store in a temp dir, driven by a manual
// clock, with shorthands for the calls engine tests make.

#ifndef HANDOFF_TESTS_NODE_ENGINE_FIXTURE_H_
#define HANDOFF_TESTS_NODE_ENGINE_FIXTURE_H_

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/engine.h"
#include "support/temp_dir.h"

namespace handoff::node {

using storage::Store;

inline std::string Map(std::string_view key, int64_t value) {
  MsgWriter w;
  w.BeginMap();
  w.Field(key, value);
  w.EndMap();
  return w.str();
}

class EngineFixture {
 public:
  EngineFixture() { Reopen(); }
  // With options of its own (applied over the fixture's at every Reopen).
  explicit EngineFixture(std::function<void(EngineOptions&)> tune) : tune_(std::move(tune)) {
    Reopen();
  }

  void Reopen() {
    engine_.reset();
    store_.reset();
    auto store = Store::Open(dir_.path(), {}, "node-a");
    REQUIRE(store.ok());
    store_ = std::move(store.value());
    EngineOptions options;
    options.node_name = "node-a";
    options.default_lease_ms = 30'000;
    options.max_payload_bytes = 1024;
    if (tune_) tune_(options);
    engine_ = std::make_unique<Engine>(*store_, clock_, options);
    REQUIRE(engine_->Recover().ok());
  }

  // Runs `fn` in one write transaction; commits if it returns OK.
  Status Write(const std::function<Status(Txn&, Batch&)>& fn) {
    auto txn = store_->BeginWrite();
    REQUIRE(txn.ok());
    Batch batch;
    Status s = fn(*txn, batch);
    if (s.ok()) s = engine_->Flush(*txn, batch);
    if (s.ok()) s = txn->Commit();
    if (!s.ok()) {
      txn->Abort();
      REQUIRE(engine_->Rollback().ok());  // as handoffd does after a failed turn
      return s;
    }
    engine_->Commit(batch);
    last_batch_ = batch;
    return Status::OK();
  }

  IntentId Send(std::string to = "agent://acme/prod/worker", int64_t lease_ms = 0,
                const std::function<void(SendParams&)>& adjust = nullptr) {
    IntentId id;
    Status s = Write([&](Txn& txn, Batch& batch) {
      SendParams p;
      p.intent_type = "intent.test.v1";
      p.from_agent = "agent://acme/prod/sender";
      p.to_agent = to;
      p.payload = Map("n", 1);
      p.lease_ms = lease_ms;
      if (adjust) adjust(p);
      auto r = engine_->Send(txn, batch, p);
      if (!r.ok()) return r.status();
      id = r->record->id;
      return Status::OK();
    });
    REQUIRE(s.ok());
    return id;
  }

  std::optional<IntentView> Deliver(const std::string& to = "agent://acme/prod/worker") {
    std::optional<IntentView> view;
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              auto r = engine_->DeliverNext(txn, batch, to);
              if (!r.ok()) return r.status();
              if (*r) view = (*r)->Copy();
              return Status::OK();
            }).ok());
    return view;
  }

  IntentView Get(const IntentId& id) {
    auto txn = store_->BeginRead();
    REQUIRE(txn.ok());
    IntentView view;
    REQUIRE(engine_->Get(*txn, id, &view).ok());
    return view;
  }

  std::vector<EventRecord> Events(const IntentId& id) {
    auto txn = store_->BeginRead();
    REQUIRE(txn.ok());
    std::vector<EventRecord> events;
    REQUIRE(engine_->Events(*txn, id, 0, 1000, &events).ok());
    return events;
  }

  Status Fail(const IntentId& id, uint32_t attempt, bool retryable) {
    return Write([&](Txn& txn, Batch& batch) {
      return engine_->Fail(txn, batch, id, attempt, {"flaky", "try again", retryable}).status();
    });
  }
  size_t FireTimers() {
    size_t fired = 0;
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              auto r = engine_->FireTimers(txn, batch, 100);
              if (r.ok()) fired = *r;
              return r.status();
            }).ok());
    return fired;
  }
  void ExpireLeases() {
    REQUIRE(Write([&](Txn& txn, Batch& batch) {
              return engine_->ExpireLeases(txn, batch, 100).status();
            }).ok());
  }

  Engine& engine() { return *engine_; }
  Store& store() { return *store_; }
  ManualClock& clock() { return clock_; }
  const Batch& last_batch() const { return last_batch_; }

 private:
  std::function<void(EngineOptions&)> tune_;
  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Engine> engine_;
  Batch last_batch_;
};

}  // namespace handoff::node

#endif  // HANDOFF_TESTS_NODE_ENGINE_FIXTURE_H_
