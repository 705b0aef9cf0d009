// storage/: write sets on their own (keys in order, a Bloom filter that never misses, keys put
// as new and erased again, the log's encoding) and applied to a plain LMDB write transaction.

#include "storage/write_set.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/lmdb.h"
#include "storage/table_model.h"

namespace handoff::storage {
namespace {

using namespace testing;  // table_model.h

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

TEST_CASE("ApplyingAWriteSetAppendsRunsPastTheLastKeyThroughOneCursorAcrossPageSplits") {
  ScratchStore scratch;
  Env* env = &scratch.env();
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
  CHECK(Forward(*read, t) == ItemsOf(model));
  auto backward = Backward(*read, t);
  std::reverse(backward.begin(), backward.end());
  CHECK(backward == ItemsOf(model));
}

TEST_CASE("ACursorWritesAppendsOnlyPastTheLastKeyAndOnlyInAPlainWriteTransaction") {
  ScratchStore scratch;
  Env* env = &scratch.env();
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
      Items{
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

}  // namespace
}  // namespace handoff::storage
