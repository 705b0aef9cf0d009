#include "node/record_cache.h"

#include <doctest/doctest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/intent_id.h"

namespace handoff::node {
namespace {

IntentRecord Record(int64_t ms, std::string type = "intent.test.v1") {
  IntentRecord r;
  r.id = NewIntentId(ms);
  r.intent_type = std::move(type);
  return r;
}

TEST_CASE("RecordCacheEvictsWhatWasNotUsedSinceTheHandPassed") {
  RecordCache cache(2);
  IntentRecord a = Record(1), b = Record(2), c = Record(3);
  cache.Put(a);
  cache.Put(b);
  REQUIRE(cache.Find(a.id) != nullptr);  // a is used; b is not
  cache.Put(c);
  CHECK(cache.size() == 2);
  CHECK(cache.Find(b.id) == nullptr);
  CHECK(cache.Find(a.id) != nullptr);
  CHECK(cache.Find(c.id) != nullptr);
  // Full, each new record takes the place of one not used since the hand last passed (a, then
  // c: the hand clears each bit it passes), and is itself, whole, not what the place held.
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

TEST_CASE("RecordCacheGivesAUsedRecordASecondChance") {
  RecordCache cache(3);
  IntentRecord a = Record(1), b = Record(2), c = Record(3), d = Record(4);
  cache.Put(a);
  cache.Put(b);
  cache.Put(c);
  REQUIRE(cache.Find(a.id) != nullptr);
  REQUIRE(cache.Find(c.id) != nullptr);
  cache.Put(d);  // b is the only one unused
  CHECK(cache.Find(b.id) == nullptr);
  CHECK(cache.Find(a.id) != nullptr);
  CHECK(cache.Find(c.id) != nullptr);
  CHECK(cache.Find(d.id) != nullptr);
  CHECK(cache.size() == 3);
}

TEST_CASE("RecordCacheAgreesWithAModelThroughPutsErasesAndEvictions") {
  // Small capacities keep the index's runs long (it is up to half full), so that erasing and
  // evicting move slots often; each lookup must still find exactly the latest record put.
  for (size_t capacity : {size_t{1}, size_t{7}, size_t{64}}) {
    CAPTURE(capacity);
    RecordCache cache(capacity);
    std::vector<IntentRecord> ids;
    for (int i = 0; i < 200; ++i) ids.push_back(Record(1000 + i));
    std::vector<std::optional<std::string>> latest(ids.size());  // what Put last stored
    std::mt19937 rng(static_cast<uint32_t>(capacity));
    for (int step = 0; step < 20000; ++step) {
      const size_t k = rng() % (capacity < 8 ? 12 : 120);
      IntentRecord& r = ids[k];
      switch (rng() % 8) {
        case 0:
          cache.Erase(r.id);
          latest[k].reset();
          REQUIRE(cache.Find(r.id) == nullptr);
          break;
        case 1:
        case 2:
        case 3: {
          r.intent_type = "intent.v" + std::to_string(step);
          cache.Put(r);
          latest[k] = r.intent_type;
          const IntentRecord* got = cache.Find(r.id);
          REQUIRE(got != nullptr);  // just put: always there
          CHECK(got->intent_type == r.intent_type);
          break;
        }
        default: {
          const IntentRecord* got = cache.Find(r.id);
          if (got != nullptr) {
            REQUIRE(latest[k].has_value());  // never one erased
            CHECK(got->id == r.id);
            CHECK(got->intent_type == *latest[k]);
          }
          break;
        }
      }
      REQUIRE(cache.size() <= capacity);
    }
    // Every record the cache still holds is found, and no other.
    size_t found = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      const IntentRecord* got = cache.Find(ids[k].id);
      if (got == nullptr) continue;
      ++found;
      REQUIRE(latest[k].has_value());
      CHECK(got->intent_type == *latest[k]);
    }
    CHECK(found == cache.size());
    cache.Clear();
    CHECK(cache.size() == 0);
    for (const IntentRecord& r : ids) CHECK(cache.Find(r.id) == nullptr);
  }
}

TEST_CASE("RecordCacheWithRoomForEveryRecordEvictsNone") {
  RecordCache cache(500);
  std::vector<IntentRecord> records;
  for (int i = 0; i < 500; ++i) records.push_back(Record(5000 + i));
  for (int round = 0; round < 3; ++round) {
    for (const IntentRecord& r : records) cache.Put(r);
  }
  for (size_t i = 0; i < records.size(); i += 2) cache.Erase(records[i].id);
  for (size_t i = 0; i < records.size(); i += 2) cache.Put(records[i]);  // the freed entries
  CHECK(cache.size() == 500);
  for (const IntentRecord& r : records) CHECK(cache.Find(r.id) != nullptr);
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
