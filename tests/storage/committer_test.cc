// storage/: the Committer on its own: batches made durable and applied to LMDB in order, taken
// in the middle of a turn, and a batch LMDB cannot take failing whole before it is logged.

#include "storage/committer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "storage/lmdb.h"
#include "storage/table_model.h"
#include "storage/write_set.h"

namespace handoff::storage {
namespace {

using namespace testing;  // table_model.h

TEST_CASE("AppendsReachLmdbInOrderAndAFailedCommitReportsItsError") {
  EnvOptions options;
  options.map_size = 1 << 20;
  ScratchStore scratch(options);
  Env* env = &scratch.env();
  Table t = 0;
  {
    auto txn = Txn::BeginWrite(*env);
    REQUIRE(txn.ok());
    t = *txn->OpenTable("seq");
    REQUIRE(txn->Commit().ok());
  }
  Committer committer(*scratch.store, nullptr);
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
    const Items items = Committed(*env, t);
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
  CHECK(Committed(*env, t).size() == 99);
}

}  // namespace
}  // namespace handoff::storage
