// Receivers (which connection gets the next delivery, and its credit) and Waiters (who is
// told when an intent ends, or when a wait runs out): the loop's bookkeeping beside the Engine.

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>

#include "node/receivers.h"
#include "node/waiters.h"

namespace handoff::node {
namespace {

TEST_CASE("ReceiversRotateAndCountCredit") {
  ReceiverSet set;
  set.Register("c1", "agent://a/b/c", 2, 0);
  set.Register("c2", "agent://a/b/c", 1, 0);
  IntentId x = NewIntentId(1), y = NewIntentId(2), z = NewIntentId(3);
  set.Assign("c2", "agent://a/b/c", x);
  auto room = set.WithRoom();
  REQUIRE(room.size() == 1);
  CHECK(room[0]->routing_id == "c1");
  set.Assign("c1", "agent://a/b/c", y);
  set.Assign("c1", "agent://a/b/c", z);
  CHECK(set.WithRoom().empty());
  set.Release(y);
  REQUIRE(set.WithRoom().size() == 1);
  set.Release(x);
  auto first = set.WithRoom();
  auto second = set.WithRoom();
  REQUIRE(first.size() == 2);
  CHECK(first[0] != second[0]);  // rotation
  auto held = set.Remove("c1");
  CHECK(held == std::vector<IntentId>{z});
  CHECK(set.size() == 1);
  set.Release(z);  // already gone: harmless
}

TEST_CASE("SilentReceiversAreDroppedAndWorkReportedElsewhereCountsAsHearingFromThem") {
  ReceiverSet set;
  set.Register("quiet", "agent://a/b/c", 1, 1000);
  set.Register("busy", "agent://a/b/c", 1, 1000);
  set.Register("busy", "agent://a/b/d", 1, 1000);
  IntentId x = NewIntentId(1);
  set.Assign("busy", "agent://a/b/c", x);
  // The busy connection runs a handler: its heartbeats come on another connection.
  set.HeardAbout(x, 5000);
  set.Heard("never-registered", 5000);  // not a receiver: nothing is kept for it
  CHECK(set.DropSilent(2000) == 1);
  REQUIRE(set.size() == 2);
  for (const auto& [key, r] : set.all()) CHECK(r.routing_id == "busy");
  CHECK(set.LastHeard("busy") == 5000);
  CHECK(set.LastHeard("quiet") == 0);
  // Silent too long: dropped, and what it held is no longer counted against anyone.
  CHECK(set.DropSilent(6000) == 1);
  CHECK(set.size() == 0);
  set.Register("busy", "agent://a/b/c", 1, 7000);
  CHECK(set.WithRoom().size() == 1);
  set.Heard("busy", 6500);  // an older word never moves the time back
  CHECK(set.LastHeard("busy") == 7000);
}

TEST_CASE("AConnectionReceivesForSeveralAddressesEachWithItsOwnCredit") {
  ReceiverSet set;
  for (int i = 0; i < 16; ++i) {
    REQUIRE(set.Register("c1", "agent://a/b/w" + std::to_string(i), 1, 0));
  }
  set.Register("c2", "agent://a/b/w0", 1, 0);
  CHECK(set.size() == 17);
  CHECK(set.WithRoom().size() == 17);
  // Holding one intent of w3 fills w3's credit only.
  IntentId x = NewIntentId(1);
  set.Assign("c1", "agent://a/b/w3", x);
  auto room = set.WithRoom();
  CHECK(room.size() == 16);
  for (Receiver* r : room) CHECK_FALSE((r->routing_id == "c1" && r->address == "agent://a/b/w3"));
  // Registering again keeps what is held; credit 0 stops that address only.
  set.Register("c1", "agent://a/b/w3", 2, 0);
  CHECK(set.WithRoom().size() == 17);
  set.Register("c1", "agent://a/b/w4", 0, 0);
  CHECK(set.WithRoom().size() == 16);
  // The connection's addresses are bounded.
  for (size_t i = 16; i < kMaxAddressesPerConnection; ++i) {
    REQUIRE(set.Register("c1", "agent://a/b/w" + std::to_string(i), 1, 0));
  }
  CHECK_FALSE(set.Register("c1", "agent://a/b/one-too-many", 1, 0));
  CHECK(set.Register("c1", "agent://a/b/w0", 5, 0));  // an existing one may still change
  // A vanished connection drops every registration, and gives back what they held.
  CHECK(set.Remove("c1") == std::vector<IntentId>{x});
  CHECK(set.size() == 1);
}

TEST_CASE("WaitersAreAnsweredByIntentOrByDeadline") {
  WaiterSet waiters;
  IntentId a = NewIntentId(1), b = NewIntentId(2);
  waiters.Add({a, "c1", 1, 100});
  waiters.Add({a, "c2", 2, 200});
  waiters.Add({b, "c3", 3, 150});
  CHECK(waiters.NextDeadline() == 100);
  auto for_a = waiters.TakeFor(a);
  CHECK(for_a.size() == 2);
  CHECK(waiters.size() == 1);
  CHECK(waiters.TakeExpired(149).empty());
  auto expired = waiters.TakeExpired(150);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].rid == 3);
  CHECK_FALSE(waiters.NextDeadline().has_value());
}

TEST_CASE("WaitersSharingADeadlineAreTakenAndRemovedOneByOne") {
  WaiterSet waiters;
  std::vector<IntentId> ids;
  for (uint64_t i = 0; i < 50; ++i) {
    ids.push_back(NewIntentId(static_cast<int64_t>(10 + i)));
    waiters.Add({ids.back(), "c", i, 500});
  }
  waiters.Add({ids[7], "d", 99, 500});  // two waiters on one intent
  auto seven = waiters.TakeFor(ids[7]);
  REQUIRE(seven.size() == 2);
  CHECK(seven[0].rid == 7);
  CHECK(seven[1].rid == 99);
  CHECK(waiters.size() == 49);
  waiters.Remove({ids[3], "c", 3, 500});
  CHECK(waiters.size() == 48);
  waiters.Remove({ids[4], "c", 999, 500});  // no such waiter: nothing goes
  waiters.Remove({ids[4], "c", 4, 600});    // nor with another deadline
  CHECK(waiters.size() == 48);
  CHECK(waiters.TakeFor(ids[3]).empty());
  auto expired = waiters.TakeExpired(500);
  CHECK(expired.size() == 48);
  CHECK(waiters.size() == 0);
  CHECK(waiters.TakeFor(ids[10]).empty());
  CHECK_FALSE(waiters.NextDeadline().has_value());
}

}  // namespace
}  // namespace handoff::node
