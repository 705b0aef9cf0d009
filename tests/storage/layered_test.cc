// storage/: write sets layered over LMDB (Txn::BeginLayered, merged cursors), checked against
// a plain std::map model of what the layers mean, and committed to LMDB through the Committer.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/committer.h"
#include "storage/lmdb.h"
#include "storage/table_model.h"
#include "storage/write_set.h"

namespace handoff::storage {
namespace {

using namespace testing;  // table_model.h

TEST_CASE("AKeyPutAsNewInALayeredTransactionAndDeletedLeavesLmdbAsItWas") {
  ScratchStore scratch;
  Env* env = &scratch.env();
  Model model;
  const Table t = BaseTable(*env, 10, 2, &model);  // k0000, k0002, ... k0008

  WriteSet ws;
  {
    auto txn = Txn::BeginLayered(*env, &ws, {});
    REQUIRE(txn.ok());
    REQUIRE(txn->PutNew(t, Key(1), "new").ok());
    REQUIRE(txn->PutNew(t, Key(3), "new").ok());
    std::string_view v;
    REQUIRE(txn->Get(t, Key(1), &v).ok());
    CHECK(v == "new");
    // Deleted through a cursor sitting on it, and by key.
    auto c = Cursor::Open(*txn, t);
    REQUIRE(c.ok());
    REQUIRE(c->Seek(Key(1)));
    REQUIRE(c->key() == Key(1));
    REQUIRE(c->DeleteCurrent().ok());
    CHECK_FALSE(c->Next());  // unpositioned
    REQUIRE(c->Seek(Key(1)));
    CHECK(c->key() == Key(2));
    REQUIRE(txn->Delete(t, Key(3)).ok());
    REQUIRE(txn->Delete(t, Key(4)).ok());  // held in LMDB: a tombstone
    model.erase(Key(4));
    CHECK(txn->Get(t, Key(1), &v).IsNotFound());
    CHECK(Forward(*txn, t) == ItemsOf(model));
  }
  CHECK(ws.table(t).size() == 1);  // only k0004's tombstone
  auto write = Txn::BeginWrite(*env);
  REQUIRE(write.ok());
  REQUIRE(ws.ApplyTo(*write).ok());
  REQUIRE(write->Commit().ok());
  CHECK(Committed(*env, t) == ItemsOf(model));

  // In a plain write transaction PutNew is a Put.
  auto plain = Txn::BeginWrite(*env);
  REQUIRE(plain.ok());
  REQUIRE(plain->PutNew(t, Key(0), "again").ok());
  std::string_view v;
  REQUIRE(plain->Get(t, Key(0), &v).ok());
  CHECK(v == "again");
}

TEST_CASE("LayeredWriteSetsReadLikeTheirMergeAndCommitToIt") {
  ScratchStore scratch;
  Env* env = &scratch.env();
  Model model;
  const Table t = BaseTable(*env, 200, 2, &model);
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };

  // Three layers of random puts and deletes, newest on top, each mirrored in the model.
  WriteSet older, newer, top;
  auto scribble = [&](Txn& txn, int ops) {
    for (int n = 0; n < ops; ++n) {
      const std::string k = Key(pick(220));
      if (pick(3) == 0) {
        REQUIRE(txn.Delete(t, k).ok());
        model.erase(k);
      } else {
        std::string v = std::to_string(rng());
        v.insert(0, 1, 'v');
        // A key the layers below and this one's writes leave absent may be put as new
        // (PutNew's contract): a later delete of it in this layer then leaves no tombstone.
        if (model.count(k) == 0 && pick(2) == 0) {
          REQUIRE(txn.PutNew(t, k, v).ok());
        } else {
          REQUIRE(txn.Put(t, k, v).ok());
        }
        model[k] = v;
      }
    }
  };
  for (WriteSet* layer : {&older, &newer, &top}) {
    const WriteSet* below0 = layer == &top ? &newer : layer == &newer ? &older : nullptr;
    const WriteSet* below1 = layer == &top ? &older : nullptr;
    auto txn = Txn::BeginLayered(*env, layer, {below0, below1});
    REQUIRE(txn.ok());
    scribble(*txn, 150);
  }

  auto txn = Txn::BeginLayered(*env, &top, {&newer, &older});
  REQUIRE(txn.ok());
  CHECK(Forward(*txn, t) == ItemsOf(model));
  auto reversed = ItemsOf(model);
  std::reverse(reversed.begin(), reversed.end());
  CHECK(Backward(*txn, t) == reversed);
  CHECK(txn->Commit().IsInvalidArgument());

  for (int i = 0; i < 230; ++i) {
    const std::string k = Key(i);
    std::string_view v;
    Status s = txn->Get(t, k, &v);
    auto it = model.find(k);
    if (it == model.end()) {
      CHECK(s.IsNotFound());
    } else {
      REQUIRE(s.ok());
      CHECK(v == it->second);
    }
    // Seek and SeekLastAtOrBefore from every key, then a step each way.
    auto c = Cursor::Open(*txn, t);
    REQUIRE(c.ok());
    auto ge = model.lower_bound(k);
    CHECK(c->Seek(k) == (ge != model.end()));
    if (ge != model.end()) {
      CHECK(c->key() == ge->first);
      auto prev = ge;
      CHECK(c->Prev() == (prev != model.begin()));
      if (prev != model.begin()) CHECK(c->key() == std::prev(prev)->first);
    }
    auto le = model.upper_bound(k);
    const bool has_le = le != model.begin();
    CHECK(c->SeekLastAtOrBefore(k) == has_le);
    if (has_le) {
      --le;
      CHECK(c->key() == le->first);
      CHECK(c->value() == le->second);
      auto next = std::next(le);
      CHECK(c->Next() == (next != model.end()));
      if (next != model.end()) CHECK(c->key() == next->first);
    }
  }

  // Deleting through a cursor writes tombstones into the top layer only.
  {
    auto c = Cursor::Open(*txn, t);
    REQUIRE(c.ok());
    int deleted = 0;
    for (bool more = c->Seek(Key(50)); more && deleted < 10;) {
      const std::string k(c->key());
      REQUIRE(c->DeleteCurrent().ok());
      model.erase(k);
      ++deleted;
      more = c->Seek(k);  // the tombstone hides it: lands on the next key
    }
    CHECK(deleted == 10);
  }
  CHECK(Forward(*txn, t) == ItemsOf(model));
  txn->Abort();

  // The Committer makes the layers durable oldest first and applies them to LMDB in order;
  // LMDB then holds exactly the model.
  std::atomic<int> events{0};
  Committer committer(*scratch.store, [&] { ++events; });
  CHECK(!committer.busy());
  CHECK(!newer.empty());
  size_t applied = 0;
  for (const WriteSet* layer : {&older, &newer}) {
    committer.Start(layer);
    CHECK(committer.busy());
    Committer::Report r = committer.Wait();
    REQUIRE(r.durable.has_value());
    CHECK(r.durable->ok());
    applied += r.applied;
  }
  committer.Start(&top);
  std::optional<Status> result;
  for (int i = 0; i < 5000 && !result; ++i) {
    Committer::Report r = committer.Take();
    result = r.durable;
    applied += r.applied;
    if (!result) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(!committer.busy());
  REQUIRE(result.has_value());
  CHECK(result->ok());
  CHECK(events.load() >= 3);
  applied += committer.Drain().applied;
  CHECK(applied == 3);
  CHECK(Committed(*env, t) == ItemsOf(model));
}

// As many layers as a transaction reads (more than a cursor holds inline): reads, seeks and
// both directions still give the merge; one layer more is refused.
TEST_CASE("AsManyLayersAsATransactionReadsMergeLikeTheirModel") {
  ScratchStore scratch;
  Env* env = &scratch.env();
  Model model;
  const Table t = BaseTable(*env, 300, 3, &model);
  std::mt19937 rng(11);
  std::vector<std::unique_ptr<WriteSet>> layers;  // oldest first
  for (size_t n = 0; n <= Txn::kMaxBelow; ++n) {
    std::vector<const WriteSet*> below;  // newest first
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) below.push_back(it->get());
    layers.push_back(std::make_unique<WriteSet>());
    auto txn = Txn::BeginLayered(*env, layers.back().get(), below);
    REQUIRE(txn.ok());
    for (int op = 0; op < 8; ++op) {
      const std::string k = Key(static_cast<int>(rng() % 320));
      if (rng() % 3 == 0) {
        REQUIRE(txn->Delete(t, k).ok());
        model.erase(k);
      } else {
        const std::string v = "layer" + std::to_string(n) + "." + std::to_string(op);
        REQUIRE(txn->Put(t, k, v).ok());
        model[k] = v;
      }
    }
  }
  std::vector<const WriteSet*> below;
  for (size_t i = layers.size() - 1; i-- > 0;) below.push_back(layers[i].get());
  REQUIRE(below.size() == Txn::kMaxBelow);
  auto txn = Txn::BeginLayered(*env, layers.back().get(), below);
  REQUIRE(txn.ok());
  CHECK(Forward(*txn, t) == ItemsOf(model));
  auto reversed = ItemsOf(model);
  std::reverse(reversed.begin(), reversed.end());
  CHECK(Backward(*txn, t) == reversed);
  for (int i = 0; i < 330; i += 7) {
    const std::string k = Key(i);
    std::string_view v;
    Status s = txn->Get(t, k, &v);
    auto it = model.find(k);
    CHECK((it == model.end() ? s.IsNotFound() : s.ok() && v == it->second));
    auto c = Cursor::Open(*txn, t);
    REQUIRE(c.ok());
    auto ge = model.lower_bound(k);
    CHECK(c->Seek(k) == (ge != model.end()));
    if (ge != model.end()) CHECK(c->key() == ge->first);
  }
  below.push_back(layers.back().get());
  auto too_many = Txn::BeginLayered(*env, nullptr, below);
  CHECK(too_many.status().IsInvalidArgument());
}

}  // namespace
}  // namespace handoff::storage
