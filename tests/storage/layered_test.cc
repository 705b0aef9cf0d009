// storage/: write sets layered over LMDB (Txn::BeginLayered, merged cursors) and the
// Committer, checked against a plain std::map model of what the layers mean.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/committer.h"
#include "storage/lmdb.h"
#include "storage/store.h"
#include "storage/write_set.h"
#include "support/temp_dir.h"

namespace handoff::storage {
namespace {

using testing::TempDir;
using Model = std::map<std::string, std::string>;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%04d", i);
  return buf;
}

// Everything a cursor sees from First to the end, and from Last back to the start.
std::vector<std::pair<std::string, std::string>> Forward(const Txn& txn, Table t) {
  auto c = Cursor::Open(txn, t);
  REQUIRE(c.ok());
  std::vector<std::pair<std::string, std::string>> out;
  for (bool more = c->First(); more; more = c->Next()) out.emplace_back(c->key(), c->value());
  REQUIRE(c->status().ok());
  return out;
}

std::vector<std::pair<std::string, std::string>> Backward(const Txn& txn, Table t) {
  auto c = Cursor::Open(txn, t);
  REQUIRE(c.ok());
  std::vector<std::pair<std::string, std::string>> out;
  for (bool more = c->Last(); more; more = c->Prev()) out.emplace_back(c->key(), c->value());
  REQUIRE(c->status().ok());
  return out;
}

std::vector<std::pair<std::string, std::string>> Items(const Model& m) {
  return {m.begin(), m.end()};
}

// Opens table "t" and commits "base<i>" at every `step`th key below `end`, mirrored in `model`.
Table BaseTable(Env& env, int end, int step, Model* model) {
  auto txn = Txn::BeginWrite(env);
  REQUIRE(txn.ok());
  auto table = txn->OpenTable("t");
  REQUIRE(table.ok());
  for (int i = 0; i < end; i += step) {
    (*model)[Key(i)] = "base" + std::to_string(i);
    REQUIRE(txn->Put(*table, Key(i), (*model)[Key(i)]).ok());
  }
  REQUIRE(txn->Commit().ok());
  return *table;
}

TEST_CASE("AWriteSetFindsEveryKeyItTouchesAndNoOtherWhateverItsSize") {
  // Past the filter's design load (it saturates and every lookup searches the map) as well as
  // below it: no key written is ever missed, and no key is found in the wrong table.
  WriteSet ws;
  constexpr int kKeys = 100000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "key" + std::to_string(i);
    if (i % 7 == 0) {
      ws.Erase(2, key);
    } else {
      ws.Put(2, key, std::to_string(i));
    }
    if (i == 1000 || i == kKeys - 1) {  // light and saturated
      int missed = 0, wrong = 0, phantom = 0;
      for (int j = 0; j <= i; ++j) {
        const std::string k = "key" + std::to_string(j);
        const WriteSet::Entry* e = ws.Find(2, k);
        if (e == nullptr) {
          ++missed;
        } else if (e->erased != (j % 7 == 0) || (!e->erased && e->value != std::to_string(j))) {
          ++wrong;
        }
        if (ws.Find(3, k) != nullptr) ++phantom;
        if (ws.Find(2, "other" + std::to_string(j)) != nullptr) ++phantom;
      }
      CHECK(missed == 0);
      CHECK(wrong == 0);
      CHECK(phantom == 0);
    }
  }
  // A caller's hash is the set's own.
  CHECK(ws.Find(2, "key5", WriteSet::KeyHash(2, "key5")) == ws.Find(2, "key5"));
}

TEST_CASE("AWriteSetKeepsKeyOrderWhetherKeysComePastItsLastOneOrNot") {
  // Put and Erase take a key past the table's last one with one comparison, any other by a
  // search: both must leave the same ordered table, with rewrites in place.
  WriteSet ws;
  std::map<std::string, std::optional<std::string>> model;  // nullopt: a tombstone
  auto put = [&](int i, const std::string& v) {
    ws.Put(4, Key(i), v);
    model[Key(i)] = v;
  };
  auto erase = [&](int i) {
    ws.Erase(4, Key(i));
    model[Key(i)] = std::nullopt;
  };
  for (int i = 10; i <= 20; ++i) put(i, std::to_string(i * 7));  // each past the last
  put(5, "before all");
  put(15, "rewritten in the middle");
  put(20, "rewritten at the end");
  erase(25);  // a tombstone past the end
  put(25, "back");
  put(22, "between");
  erase(11);
  put(30, "last");
  put(30, "last again");

  std::vector<std::string> keys;
  for (const auto& [key, entry] : ws.table(4)) {
    keys.emplace_back(key);
    auto want = model.find(std::string(key));
    REQUIRE(want != model.end());
    CHECK(entry.erased == !want->second.has_value());
    if (want->second) CHECK(entry.value == *want->second);
  }
  std::vector<std::string> want_keys;
  for (const auto& [key, value] : model) want_keys.push_back(key);
  CHECK(keys == want_keys);  // in order, each once

  // The log's encoding carries the same table.
  std::string bytes;
  ws.Encode(&bytes);
  size_t expected = 0;  // op, table, key length, key, then value length and value if a put
  for (const auto& [key, value] : model)  // lengths under 128: one varint byte each
    expected += 3 + key.size() + (value ? 1 + value->size() : 0);
  CHECK(bytes.size() == expected);
  std::string prefixed = "prefix";
  ws.Encode(&prefixed);  // appends to what the string holds
  CHECK(prefixed == "prefix" + bytes);
  WriteSet decoded;
  REQUIRE(WriteSet::Decode(bytes, &decoded).ok());
  for (const auto& [key, value] : model) {
    const WriteSet::Entry* e = decoded.Find(4, key);
    REQUIRE(e != nullptr);
    CHECK(e->erased == !value.has_value());
    if (value) CHECK(e->value == *value);
  }
  CHECK(decoded.table(4).size() == model.size());
}

TEST_CASE("AKeyPutAsNewAndErasedInTheSameSetLeavesNoTrace") {
  WriteSet ws;
  std::string bytes;

  ws.PutNew(4, "fresh", "1");
  REQUIRE(ws.Find(4, "fresh") != nullptr);
  ws.Put(4, "fresh", "2");  // still absent below: still fresh
  ws.Erase(4, "fresh");
  CHECK(ws.Find(4, "fresh") == nullptr);
  CHECK(ws.table(4).empty());
  ws.Encode(&bytes);
  CHECK(bytes.empty());  // nothing for the log, nothing for LMDB

  // A key put by Put may be held below: its erase is a tombstone, whatever came after.
  ws.Put(4, "held", "1");
  ws.PutNew(4, "held", "2");
  ws.Erase(4, "held");
  const WriteSet::Entry* e = ws.Find(4, "held");
  REQUIRE(e != nullptr);
  CHECK(e->erased);

  // So is a key this set erased first: its tombstone may hide a key below.
  ws.Erase(4, "hidden");
  ws.PutNew(4, "hidden", "1");
  ws.Erase(4, "hidden");
  e = ws.Find(4, "hidden");
  REQUIRE(e != nullptr);
  CHECK(e->erased);

  // Put as new again after it went: new again.
  ws.PutNew(4, "fresh", "3");
  e = ws.Find(4, "fresh");
  REQUIRE(e != nullptr);
  CHECK(e->value == "3");
  ws.Erase(4, "fresh");
  CHECK(ws.Find(4, "fresh") == nullptr);

  bytes.clear();
  ws.Encode(&bytes);
  WriteSet decoded;
  REQUIRE(WriteSet::Decode(bytes, &decoded).ok());
  CHECK(decoded.table(4).size() == 2);  // the two tombstones
  CHECK(decoded.Find(4, "fresh") == nullptr);
}

TEST_CASE("AKeyPutAsNewInALayeredTransactionAndDeletedLeavesLmdbAsItWas") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  Env* env = &(*store)->env();
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
    CHECK(Forward(*txn, t) == Items(model));
  }
  CHECK(ws.table(t).size() == 1);  // only k0004's tombstone
  auto write = Txn::BeginWrite(*env);
  REQUIRE(write.ok());
  REQUIRE(ws.ApplyTo(*write).ok());
  REQUIRE(write->Commit().ok());
  auto read = Txn::BeginRead(*env);
  REQUIRE(read.ok());
  CHECK(Forward(*read, t) == Items(model));

  // In a plain write transaction PutNew is a Put.
  auto plain = Txn::BeginWrite(*env);
  REQUIRE(plain.ok());
  REQUIRE(plain->PutNew(t, Key(0), "again").ok());
  std::string_view v;
  REQUIRE(plain->Get(t, Key(0), &v).ok());
  CHECK(v == "again");
}

TEST_CASE("ApplyingAWriteSetAppendsRunsPastTheLastKeyThroughOneCursorAcrossPageSplits") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  Env* env = &(*store)->env();
  Table t = 0;
  Model model;
  {
    auto txn = Txn::BeginWrite(*env);
    REQUIRE(txn.ok());
    t = *txn->OpenTable("t");
    for (int i = 0; i < 200; i += 10) {
      REQUIRE(txn->Put(t, Key(i), "old").ok());
      model[Key(i)] = "old";
    }
    REQUIRE(txn->Commit().ok());
  }
  // Two batches, each with changes in the middle of the table and a long run past its end:
  // values of 1 KiB fill a page every few entries, so the run splits pages as it goes.
  int next = 200;
  for (int batch = 0; batch < 2; ++batch) {
    WriteSet ws;
    ws.Put(t, Key(10), "rewritten " + std::to_string(batch));
    model[Key(10)] = "rewritten " + std::to_string(batch);
    ws.Put(t, Key(15 + batch), "between");
    model[Key(15 + batch)] = "between";
    ws.Erase(t, Key(20 + batch * 10));
    model.erase(Key(20 + batch * 10));
    for (int i = 0; i < 300; ++i, ++next) {
      const std::string value(1024, static_cast<char>('a' + next % 26));
      ws.Put(t, Key(next), value);
      model[Key(next)] = value;
    }
    ws.Erase(t, Key(next + 5));  // a tombstone past the end: nothing to delete
    auto txn = Txn::BeginWrite(*env);
    REQUIRE(txn.ok());
    REQUIRE(ws.ApplyTo(*txn).ok());
    REQUIRE(txn->Commit().ok());
  }
  auto read = Txn::BeginRead(*env);
  REQUIRE(read.ok());
  CHECK(Forward(*read, t) == Items(model));
  auto backward = Backward(*read, t);
  std::reverse(backward.begin(), backward.end());
  CHECK(backward == Items(model));
}

TEST_CASE("ACursorWritesAppendsOnlyPastTheLastKeyAndOnlyInAPlainWriteTransaction") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  Env* env = &(*store)->env();
  auto txn = Txn::BeginWrite(*env);
  REQUIRE(txn.ok());
  const Table t = *txn->OpenTable("t");
  {
    auto c = Cursor::Open(*txn, t);
    REQUIRE(c.ok());
    REQUIRE(c->Append(Key(1), "one").ok());
    REQUIRE(c->Append(Key(2), "two").ok());
    // At or before the last key: refused, and the table keeps what it had.
    Status s = c->Append(Key(2), "again");
    CHECK_FALSE(s.ok());
    CHECK_FALSE(c->Append(Key(0), "zero").ok());
    REQUIRE(c->Append(Key(3), "three").ok());
    // Puts and erases anywhere, in any order; erasing a missing key is no error.
    REQUIRE(c->Put(Key(0), "zero").ok());
    REQUIRE(c->Put(Key(2), "TWO").ok());
    REQUIRE(c->Erase(Key(1)).ok());
    REQUIRE(c->Erase(Key(7)).ok());
    REQUIRE(c->Put(Key(5), "five").ok());
    REQUIRE(c->Append(Key(6), "six").ok());
  }
  CHECK(
      Forward(*txn, t) ==
      std::vector<std::pair<std::string, std::string>>{
          {Key(0), "zero"}, {Key(2), "TWO"}, {Key(3), "three"}, {Key(5), "five"}, {Key(6), "six"}});
  REQUIRE(txn->Commit().ok());

  WriteSet ws;
  auto layered = Txn::BeginLayered(*env, &ws, {});
  REQUIRE(layered.ok());
  auto c = Cursor::Open(*layered, t);
  REQUIRE(c.ok());
  CHECK(c->Append(Key(9), "nine").IsInvalidArgument());
  CHECK(c->Put(Key(0), "nought").IsInvalidArgument());
  CHECK(c->Erase(Key(0)).IsInvalidArgument());
  CHECK(ws.table(t).empty());
}

TEST_CASE("LayeredWriteSetsReadLikeTheirMergeAndCommitToIt") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  Env* env = &(*store)->env();
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
  CHECK(Forward(*txn, t) == Items(model));
  auto reversed = Items(model);
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
  CHECK(Forward(*txn, t) == Items(model));
  txn->Abort();

  // The Committer makes the layers durable oldest first and applies them to LMDB in order;
  // LMDB then holds exactly the model.
  std::atomic<int> events{0};
  Committer committer(**store, [&] { ++events; });
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
  auto read = Txn::BeginRead(*env);
  REQUIRE(read.ok());
  CHECK(Forward(*read, t) == Items(model));
}

// As many layers as a transaction reads (more than a cursor holds inline): reads, seeks and
// both directions still give the merge; one layer more is refused.
TEST_CASE("AsManyLayersAsATransactionReadsMergeLikeTheirModel") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  Env* env = &(*store)->env();
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
  CHECK(Forward(*txn, t) == Items(model));
  auto reversed = Items(model);
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

TEST_CASE("AppendsReachLmdbInOrderAndAFailedCommitReportsItsError") {
  TempDir dir;
  EnvOptions options;
  options.map_size = 1 << 20;
  auto store = Store::Open(dir.path(), options, "node-test");
  REQUIRE(store.ok());
  Env* env = &(*store)->env();
  Table t = 0;
  {
    auto txn = Txn::BeginWrite(*env);
    REQUIRE(txn.ok());
    t = *txn->OpenTable("seq");
    REQUIRE(txn->Commit().ok());
  }
  Committer committer(**store, nullptr);
  WriteSet ws;
  {
    auto txn = Txn::BeginLayered(*env, &ws, {});
    REQUIRE(txn.ok());
    for (int i = 0; i < 100; ++i) REQUIRE(txn->Append(t, Key(i), "x").ok());
    REQUIRE(txn->Delete(t, Key(5)).ok());
  }
  // A durable batch is taken without its LMDB accounting (handoffd's loop does so in the
  // middle of a turn): once taken, Take reports no outcome again, and the drain still
  // reports the batch applied.
  committer.Start(&ws);
  bool committed = false;
  for (int i = 0; i < 5000 && !committed; ++i) {
    committed = committer.TakeIfCommitted();
    if (!committed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(committed);
  CHECK_FALSE(committer.busy());
  CHECK_FALSE(committer.TakeIfCommitted());
  Committer::Report r = committer.Take();
  CHECK_FALSE(r.durable.has_value());
  const size_t applied_before_drain = r.applied;
  r = committer.Drain();
  CHECK(applied_before_drain + r.applied == 1);
  {
    auto read = Txn::BeginRead(*env);
    REQUIRE(read.ok());
    auto items = Forward(*read, t);
    CHECK(items.size() == 99);
    CHECK(items.front().first == Key(0));
    CHECK(items.back().first == Key(99));
  }
  // More than the map holds: the batch fails as a whole, before it is logged, and LMDB
  // keeps what it had.
  WriteSet big;
  for (int i = 0; i < 40; ++i) big.Put(t, "big" + std::to_string(i), std::string(64 << 10, 'b'));
  committer.Start(&big);
  // A failure is never taken as committed: it stays for Wait (or Take).
  for (int i = 0; i < 50; ++i) {
    REQUIRE_FALSE(committer.TakeIfCommitted());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(committer.busy());
  r = committer.Wait();
  REQUIRE(r.durable.has_value());
  CHECK(r.durable->IsResourceExhausted());
  CHECK(committer.Drain().applied == 0);
  auto read = Txn::BeginRead(*env);
  REQUIRE(read.ok());
  CHECK(Forward(*read, t).size() == 99);
}

}  // namespace
}  // namespace handoff::storage
