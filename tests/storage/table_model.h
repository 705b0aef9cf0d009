// Helpers shared by the storage tests of write sets, layered transactions and the Committer:
// a scratch store, a table filled from a std::map model, and what cursors see, to compare with
// the model.

#ifndef HANDOFF_TESTS_STORAGE_TABLE_MODEL_H_
#define HANDOFF_TESTS_STORAGE_TABLE_MODEL_H_

#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/lmdb.h"
#include "storage/store.h"
#include "support/temp_dir.h"

namespace handoff::storage::testing {

using Model = std::map<std::string, std::string>;
using Items = std::vector<std::pair<std::string, std::string>>;

// A store in a temporary directory, removed with it.
struct ScratchStore {
  explicit ScratchStore(const EnvOptions& options = {}) {
    auto opened = Store::Open(dir.path(), options, "node-test");
    REQUIRE(opened.ok());
    store = std::move(*opened);
  }
  Env& env() { return store->env(); }

  handoff::testing::TempDir dir;
  std::unique_ptr<Store> store;
};

inline std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%04d", i);
  return buf;
}

// Everything a cursor sees from First to the end, or from Last back to the start.
inline Items Walk(const Txn& txn, Table t, bool backward) {
  auto c = Cursor::Open(txn, t);
  REQUIRE(c.ok());
  Items out;
  for (bool more = backward ? c->Last() : c->First(); more;
       more = backward ? c->Prev() : c->Next()) {
    out.emplace_back(c->key(), c->value());
  }
  REQUIRE(c->status().ok());
  return out;
}
inline Items Forward(const Txn& txn, Table t) { return Walk(txn, t, false); }
inline Items Backward(const Txn& txn, Table t) { return Walk(txn, t, true); }

// What LMDB holds in `t`, read in a transaction of its own.
inline Items Committed(Env& env, Table t) {
  auto read = Txn::BeginRead(env);
  REQUIRE(read.ok());
  return Forward(*read, t);
}

inline Items ItemsOf(const Model& m) { return {m.begin(), m.end()}; }

// Opens table "t" and commits "base<i>" at every `step`th key below `end`, mirrored in `model`.
inline Table BaseTable(Env& env, int end, int step, Model* model) {
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

}  // namespace handoff::storage::testing

#endif  // HANDOFF_TESTS_STORAGE_TABLE_MODEL_H_
