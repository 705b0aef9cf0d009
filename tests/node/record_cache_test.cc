#include "node/record_cache.h"

#include <doctest/doctest.h>

#include "base/intent_id.h"

namespace handoff::node {
namespace {

IntentRecord Record(int64_t ms, std::string type = "intent.test.v1") {
  IntentRecord r;
  r.id = NewIntentId(ms);
  r.intent_type = std::move(type);
  return r;
}

TEST_CASE("RecordCacheKeepsTheMostRecentlyUsedWithinItsCapacity") {
  RecordCache cache(2);
  IntentRecord a = Record(1), b = Record(2), c = Record(3);
  cache.Put(a);
  cache.Put(b);
  REQUIRE(cache.Find(a.id) != nullptr);  // a is now the most recent; b the least
  cache.Put(c);
  CHECK(cache.size() == 2);
  CHECK(cache.Find(b.id) == nullptr);
  CHECK(cache.Find(a.id) != nullptr);
  CHECK(cache.Find(c.id) != nullptr);
  // Full, each new record takes the place of the least recently used (a, then c), and is
  // itself, whole, not what the place held.
  IntentRecord d = Record(4, "intent.d.v1"), e = Record(5, "intent.e.v1");
  const IntentId d_id = d.id;
  cache.Put(std::move(d));
  CHECK(cache.size() == 2);
  CHECK(cache.Find(a.id) == nullptr);
  REQUIRE(cache.Find(d_id) != nullptr);
  CHECK(cache.Find(d_id)->intent_type == "intent.d.v1");
  cache.Put(e);
  CHECK(cache.Find(c.id) == nullptr);
  CHECK(cache.Find(d_id) != nullptr);
  REQUIRE(cache.Find(e.id) != nullptr);
  CHECK(cache.Find(e.id)->intent_type == "intent.e.v1");
}

TEST_CASE("RecordCachePutReplacesAndEraseForgets") {
  RecordCache cache(4);
  IntentRecord a = Record(1);
  cache.Put(a);
  a.intent_type = "intent.changed.v1";
  cache.Put(a);
  CHECK(cache.size() == 1);
  REQUIRE(cache.Find(a.id) != nullptr);
  CHECK(cache.Find(a.id)->intent_type == "intent.changed.v1");
  cache.Erase(a.id);
  CHECK(cache.Find(a.id) == nullptr);
  cache.Erase(a.id);  // erasing an absent id is harmless
  cache.Put(Record(2));
  cache.Clear();
  CHECK(cache.size() == 0);
}

TEST_CASE("RecordCacheOfCapacityZeroHoldsNothing") {
  RecordCache cache(0);
  IntentRecord a = Record(1);
  cache.Put(a);
  CHECK(cache.Find(a.id) == nullptr);
  CHECK(cache.size() == 0);
}

}  // namespace
}  // namespace handoff::node
