// storage/: the events of an intent, kept once each in the audit trail and chained (schema 2),
// and the migration of a schema 1 data directory, which kept two records per event.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/intent_id.h"
#include "storage/lmdb.h"
#include "storage/log.h"
#include "storage/store.h"
#include "storage/write_set.h"
#include "support/temp_dir.h"

namespace handoff::storage {
namespace {

using testing::TempDir;

// Records events as the Engine does: the next audit seq, chained to the intent's last event.
class History {
 public:
  explicit History(Store* s = nullptr) : s_(s) {}
  void Add(Txn& txn, IntentRecord& r, std::string type = "intent.test") {
    EventRecord e;
    e.id = r.id;
    e.seq = ++r.seq;
    e.event_type = std::move(type);
    e.audit_seq = ++audit_;
    e.prev_audit_seq = r.last_audit_seq;
    REQUIRE(s_->PutEvent(txn, e).ok());
    r.last_audit_seq = e.audit_seq;
  }

 private:
  Store* s_;
  uint64_t audit_ = 0;
};

std::vector<uint32_t> Seqs(Store& s, const Txn& txn, const IntentRecord& r, uint32_t since,
                           size_t limit) {
  std::vector<EventRecord> events;
  REQUIRE(s.ListEvents(txn, r, since, limit, &events).ok());
  std::vector<uint32_t> seqs;
  for (const EventRecord& e : events) {
    CHECK(e.id == r.id);
    seqs.push_back(e.seq);
  }
  return seqs;
}

std::vector<uint32_t> Range(uint32_t from, uint32_t to) {
  std::vector<uint32_t> out;
  for (uint32_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

uint64_t CountOf(Store& s, const char* table) {
  auto txn = Txn::BeginWrite(s.env());
  REQUIRE(txn.ok());
  auto t = txn->OpenTable(table);
  REQUIRE(t.ok());
  return txn->Count(*t).value();
}

// A fresh store and two intents, a and b, with no events yet.
struct TwoIntents {
  TwoIntents() {
    auto opened = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(opened.ok());
    store = std::move(*opened);
    h = History(store.get());
    a.id = NewIntentId(1000);
    b.id = NewIntentId(2000);
  }
  TempDir dir;
  std::unique_ptr<Store> store;
  History h;
  IntentRecord a, b;
};

TEST_CASE_FIXTURE(TwoIntents,
                  "AnIntentsHistoryIsOneChainInTheAuditTrailListedInPagesAndPurgedWhole") {
  Store& s = *store;
  {
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    // 200 events of a, interleaved with 100 of b: neither's audit seqs are contiguous.
    for (int i = 0; i < 200; ++i) {
      h.Add(*txn, a);
      if (i % 2 == 0) h.Add(*txn, b);
    }
    REQUIRE(s.PutIntent(*txn, a).ok());
    REQUIRE(s.PutIntent(*txn, b).ok());
    REQUIRE(txn->Commit().ok());
  }
  // One record per event in the trail; the index holds every 64th of each intent.
  CHECK(CountOf(s, kAuditTable) == 300);
  CHECK(CountOf(s, kEventsTable) == 200 / kEventIndexEvery + 100 / kEventIndexEvery);

  auto txn = s.BeginWrite();
  REQUIRE(txn.ok());
  // Every page boundary against the index's: before, on and after an indexed seq, and past
  // the end.
  for (uint32_t since : {0u, 1u, 62u, 63u, 64u, 65u, 127u, 128u, 129u, 150u, 192u, 199u}) {
    for (size_t limit : {size_t{1}, size_t{10}, size_t{64}, size_t{65}, size_t{1000}}) {
      const uint32_t last = static_cast<uint32_t>(std::min<size_t>(200, since + limit));
      INFO("since " << since << ", limit " << limit);
      CHECK(Seqs(s, *txn, a, since, limit) == Range(since + 1, last));
    }
  }
  CHECK(Seqs(s, *txn, a, 200, 10).empty());
  CHECK(Seqs(s, *txn, a, UINT32_MAX, 10).empty());
  CHECK(Seqs(s, *txn, a, 0, 0).empty());
  CHECK(Seqs(s, *txn, b, 90, 100) == Range(91, 100));

  std::vector<EventRecord> trail;
  REQUIRE(s.ListAudit(*txn, 0, 1000, &trail).ok());
  REQUIRE(trail.size() == 300);
  for (size_t i = 0; i < trail.size(); ++i) CHECK(trail[i].audit_seq == i + 1);
  CHECK(trail[2].id == a.id);
  CHECK(trail[2].seq == 2);
  trail.clear();
  REQUIRE(s.ListAudit(*txn, 298, 1000, &trail).ok());
  CHECK(trail.size() == 2);
  trail.clear();
  REQUIRE(s.ListAudit(*txn, UINT64_MAX, 1000, &trail).ok());
  CHECK(trail.empty());

  // Purged, a leaves nothing behind; b is whole.
  REQUIRE(s.PurgeIntent(*txn, a).ok());
  REQUIRE(txn->Commit().ok());
  CHECK(CountOf(s, kAuditTable) == 100);
  CHECK(CountOf(s, kEventsTable) == 100 / kEventIndexEvery);
  auto read = s.BeginRead();
  REQUIRE(read.ok());
  CHECK(Seqs(s, *read, b, 0, 1000) == Range(1, 100));
  REQUIRE(s.ListAudit(*read, 0, 1000, &trail).ok());
  CHECK(trail.size() == 100);
  for (const EventRecord& e : trail) CHECK(e.id == b.id);
}

TEST_CASE_FIXTURE(TwoIntents, "ABrokenHistoryIsReportedAsCorruptionNotFollowed") {
  Store& s = *store;
  auto txn = s.BeginWrite();
  REQUIRE(txn.ok());
  for (int i = 0; i < 5; ++i) h.Add(*txn, a);
  h.Add(*txn, b);
  std::vector<EventRecord> events;
  // A record that claims more events than its chain holds.
  IntentRecord longer = a;
  longer.seq = 7;
  Status st = s.ListEvents(*txn, longer, 0, 100, &events);
  CHECK(st.IsCorruption());
  CHECK(st.message().find("is event 5 of intent") != std::string::npos);
  // One that claims an indexed event its history never had.
  IntentRecord unindexed = a;
  unindexed.seq = 200;
  st = s.ListEvents(*txn, unindexed, 0, 10, &events);
  CHECK(st.IsCorruption());
  CHECK(st.message().find("lacks its index entry for event 64") != std::string::npos);
  // One whose chain starts at an entry that is not there.
  IntentRecord missing = a;
  missing.last_audit_seq = 99;
  st = s.ListEvents(*txn, missing, 0, 100, &events);
  CHECK(st.IsCorruption());
  CHECK(st.message().find("lacks event 5") != std::string::npos);
  // A chain that leads into another intent's history.
  IntentRecord crossed = a;
  crossed.last_audit_seq = 6;  // b's event
  st = s.ListEvents(*txn, crossed, 0, 100, &events);
  CHECK(st.IsCorruption());
  CHECK(s.PurgeIntent(*txn, crossed).IsCorruption());
  CHECK(s.ListEvents(*txn, a, 0, 100, &events).ok());
  CHECK(events.size() == 5);
}

std::string U64Be(uint64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  return out;
}

std::string EventKey(const IntentId& id, uint32_t seq) {
  std::string key(id.bytes());
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}

TEST_CASE("ASchema1DataDirectoryIsMigratedOnceToOneRecordPerEvent") {
  TempDir dir;
  IntentRecord a, b, c;
  a.id = NewIntentId(1000);
  b.id = NewIntentId(2000);
  c.id = NewIntentId(2500);                 // damaged: its one event claims a's second's audit seq
  const IntentId gone = NewIntentId(3000);  // an audit entry naming an event not there
  {
    // Lay out schema 1 by hand, as its releases wrote it: per event a record under (id, seq)
    // and an audit entry naming it; b's second event predates the audit trail (audit_seq 0).
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    auto txn = Txn::BeginWrite((*store)->env());
    REQUIRE(txn.ok());
    const Table meta = *txn->OpenTable(kMetaTable);
    const Table intents = *txn->OpenTable(kIntentsTable);
    const Table events = *txn->OpenTable(kEventsTable);
    const Table audit = *txn->OpenTable(kAuditTable);
    REQUIRE(txn->Put(meta, kMetaSchemaVersion, "1").ok());
    uint64_t audit_seq = 0;
    auto put_event = [&](IntentRecord& r, bool audited) {
      EventRecord e;
      e.id = r.id;
      e.seq = ++r.seq;
      e.event_type = "intent.e" + std::to_string(e.seq);
      if (audited) {
        e.audit_seq = ++audit_seq;
        REQUIRE(txn->Put(audit, U64Be(e.audit_seq), EventKey(e.id, e.seq)).ok());
      }
      REQUIRE(txn->Put(events, EventKey(e.id, e.seq), EncodeStoredEvent(e, 1)).ok());
    };
    for (int i = 0; i < 70; ++i) {  // past the first indexed seq
      put_event(a, true);
      if (i == 3) put_event(b, true);
      if (i == 5) put_event(b, false);
    }
    EventRecord node_event;  // the node's own (a pause), under the all-zero id
    node_event.seq = 1;
    node_event.event_type = "node.paused";
    node_event.audit_seq = ++audit_seq;
    REQUIRE(txn->Put(audit, U64Be(node_event.audit_seq), EventKey(IntentId(), 1)).ok());
    REQUIRE(txn->Put(events, EventKey(IntentId(), 1), EncodeStoredEvent(node_event, 1)).ok());
    REQUIRE(txn->Put(audit, U64Be(++audit_seq), EventKey(gone, 1)).ok());
    {
      EventRecord clash;
      clash.id = c.id;
      clash.seq = ++c.seq;
      clash.event_type = "intent.clash";
      clash.audit_seq = 2;
      REQUIRE(txn->Put(events, EventKey(c.id, 1), EncodeStoredEvent(clash, 1)).ok());
    }
    REQUIRE(txn->Put(intents, b.id.bytes(), EncodeStoredIntent(b, 1)).ok());
    REQUIRE(txn->Put(intents, c.id.bytes(), EncodeStoredIntent(c, 1)).ok());
    // a's last event, and its record, are only in the write-ahead log: durable, not yet in
    // LMDB when that release stopped. The log is replayed (in schema 1's layout) first.
    WriteSet ws;
    EventRecord e;
    e.id = a.id;
    e.seq = ++a.seq;
    e.event_type = "intent.e" + std::to_string(e.seq);
    e.audit_seq = 75;
    ws.Put(audit, U64Be(e.audit_seq), EventKey(e.id, e.seq));
    ws.Put(events, EventKey(e.id, e.seq), EncodeStoredEvent(e, 1));
    ws.Put(intents, a.id.bytes(), EncodeStoredIntent(a, 1));
    REQUIRE(txn->Commit().ok());
    store->reset();
    auto log = Log::Open(dir.path() + "/wal", EnvOptions().log_bytes, false);
    REQUIRE(log.ok());
    std::string bytes;
    ws.Encode(&bytes);
    REQUIRE((*log)->Append(1, bytes).ok());
  }
  for (int open = 0; open < 2; ++open) {  // migrated the first time; the second finds schema 4
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    Store& s = **store;
    CHECK(CountOf(s, kAuditTable) == 75);  // 71 + 2 + 1 + 1 events; the dangling entry gone
    CHECK(CountOf(s, kEventsTable) == 2);  // a's 64th, the node's first
    auto txn = s.BeginRead();
    REQUIRE(txn.ok());
    std::string_view version;
    REQUIRE(txn->Get(*txn->OpenTable(kMetaTable), kMetaSchemaVersion, &version).ok());
    CHECK(version == std::to_string(kSchemaVersion));
    IntentRecord ra, rb, rc;
    REQUIRE(s.GetIntent(*txn, a.id, &ra).ok());
    REQUIRE(s.GetIntent(*txn, b.id, &rb).ok());
    REQUIRE(s.GetIntent(*txn, c.id, &rc).ok());
    CHECK(Seqs(s, *txn, ra, 0, 1000) == Range(1, 71));
    CHECK(Seqs(s, *txn, ra, 60, 5) == Range(61, 65));
    CHECK(Seqs(s, *txn, rb, 0, 1000) == Range(1, 2));
    CHECK(Seqs(s, *txn, rc, 0, 1000) == Range(1, 1));  // kept, under a seq of its own
    // b's unaudited event took the next after 75, c's the one after.
    CHECK(*s.LastAuditSeq(*txn) == 77);
    std::vector<EventRecord> trail;
    REQUIRE(s.ListAudit(*txn, 0, 1000, &trail).ok());
    REQUIRE(trail.size() == 75);
    CHECK(trail[1].id == a.id);  // a's second kept its place
    CHECK(trail[4].id == b.id);  // b's first, recorded after a's fourth
    CHECK(trail[73].id == b.id);
    CHECK(trail[73].seq == 2);
    CHECK(trail[73].event_type == "intent.e2");
    CHECK(trail.back().id == c.id);
    CHECK(trail.back().event_type == "intent.clash");
    uint32_t node_seq = 0;
    uint64_t node_audit = 0;
    REQUIRE(s.LastNodeEvent(*txn, &node_seq, &node_audit).ok());
    CHECK(node_seq == 1);
    CHECK(node_audit == 72);
  }
}

TEST_CASE("ADataDirectoryOfAnUnknownSchemaIsRefused") {
  TempDir dir;
  {
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    auto txn = Txn::BeginWrite((*store)->env());
    REQUIRE(txn.ok());
    REQUIRE(txn->Put(*txn->OpenTable(kMetaTable), kMetaSchemaVersion, "5").ok());
    REQUIRE(txn->Commit().ok());
  }
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(!store.ok());
  CHECK(store.status().message().find("schema version 5") != std::string::npos);
}

// A write set in the log framing of schema 3 and before: op 'P', table, u32 LE key length, key,
// u32 LE value length, value.
std::string OldLogPut(Table table, std::string_view key, std::string_view value) {
  std::string out = {'P', static_cast<char>(table)};
  for (std::string_view part : {key, value}) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(part.size() >> (8 * i)));
    out.append(part);
  }
  return out;
}

// What a schema 3 release left: records in stored forms 3 (intents) and 2 (events) in LMDB,
// and in its log a record with fixed-width lengths holding more of them. The first open by
// schema 4 replays the log, relabels the directory, and reads every record; what it writes
// from then on is in form 4.
TEST_CASE("ASchema3DataDirectoryAndItsLogOpenAsSchema4") {
  TempDir dir;
  IntentRecord a, b;
  a.id = NewIntentId(1000);
  a.intent_type = "intent.kept.v1";
  a.to_agent = "agent://x/y/a";
  a.seq = 1;
  a.last_audit_seq = 1;
  a.forward_seq = 7;
  a.deadline_ms = -3;
  b = a;
  b.id = NewIntentId(2000);
  b.to_agent = "agent://x/y/b";
  b.last_audit_seq = 2;
  auto event_of = [](const IntentRecord& r, uint64_t audit_seq) {
    EventRecord e;
    e.id = r.id;
    e.seq = 1;
    e.event_type = "intent.sent";
    e.audit_seq = audit_seq;
    return e;
  };
  {
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    auto txn = Txn::BeginWrite((*store)->env());
    REQUIRE(txn.ok());
    const Table intents = *txn->OpenTable(kIntentsTable);
    const Table audit = *txn->OpenTable(kAuditTable);
    REQUIRE(txn->Put(*txn->OpenTable(kMetaTable), kMetaSchemaVersion, "3").ok());
    REQUIRE(txn->Put(intents, a.id.bytes(), EncodeStoredIntent(a, 3)).ok());
    REQUIRE(txn->Put(audit, U64Be(1), EncodeStoredEvent(event_of(a, 1), 2)).ok());
    REQUIRE(txn->Commit().ok());
    store->reset();
    // b is only in the log, as schema 3 logged it.
    auto log = Log::Open(dir.path() + "/wal", EnvOptions().log_bytes, false);
    REQUIRE(log.ok());
    const std::string record = OldLogPut(intents, b.id.bytes(), EncodeStoredIntent(b, 3)) +
                               OldLogPut(audit, U64Be(2), EncodeStoredEvent(event_of(b, 2), 2));
    REQUIRE((*log)->Append(1, record).ok());
  }
  for (int open = 0; open < 2; ++open) {  // relabelled the first time; the second finds 4
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    Store& s = **store;
    auto txn = Txn::BeginWrite(s.env());
    REQUIRE(txn.ok());
    std::string_view version;
    REQUIRE(txn->Get(*txn->OpenTable(kMetaTable), kMetaSchemaVersion, &version).ok());
    CHECK(version == "4");
    for (const IntentRecord* want : {&a, &b}) {
      IntentRecord got;
      REQUIRE(s.GetIntent(*txn, want->id, &got).ok());
      CHECK(got.to_agent == want->to_agent);
      CHECK(got.forward_seq == 7);
      CHECK(got.deadline_ms == -3);
      std::vector<EventRecord> events;
      REQUIRE(s.ListEvents(*txn, got, 0, 10, &events).ok());
      REQUIRE(events.size() == 1);
      CHECK(events[0].event_type == "intent.sent");
      CHECK(events[0].audit_seq == want->last_audit_seq);
    }
    // Written now, in form 4, and read back beside the older forms.
    IntentRecord c = a;
    c.id = NewIntentId(3000 + open);
    c.last_audit_seq = 3 + open;
    REQUIRE(s.PutIntent(*txn, c).ok());
    REQUIRE(s.PutEvent(*txn, event_of(c, c.last_audit_seq)).ok());
    std::string_view raw;
    REQUIRE(txn->Get(*txn->OpenTable(kIntentsTable), c.id.bytes(), &raw).ok());
    CHECK(raw[0] == 0x04);
    IntentRecord got;
    REQUIRE(s.GetIntent(*txn, c.id, &got).ok());
    CHECK(got.deadline_ms == -3);
    std::vector<EventRecord> events;
    REQUIRE(s.ListEvents(*txn, got, 0, 10, &events).ok());
    REQUIRE(events.size() == 1);
    CHECK(events[0].audit_seq == c.last_audit_seq);
    REQUIRE(txn->Commit().ok());
  }
}

TEST_CASE("ASchema2DataDirectoryOpensAsSchema4AsItIs") {
  TempDir dir;
  {
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    auto txn = Txn::BeginWrite((*store)->env());
    REQUIRE(txn.ok());
    REQUIRE(txn->Put(*txn->OpenTable(kMetaTable), kMetaSchemaVersion, "2").ok());
    REQUIRE((*store)->PutOutbox(*txn, "node-b", 1, 5, "a whole message").ok());
    REQUIRE(txn->Commit().ok());
  }
  for (int open = 0; open < 2; ++open) {
    auto store = Store::Open(dir.path(), {}, "node-a");
    REQUIRE(store.ok());
    auto txn = Txn::BeginRead((*store)->env());
    REQUIRE(txn.ok());
    std::string_view version;
    REQUIRE(txn->Get(*txn->OpenTable(kMetaTable), kMetaSchemaVersion, &version).ok());
    CHECK(version == "4");
    std::vector<OutboxEntry> entries;
    REQUIRE((*store)->ReadOutbox(*txn, "node-b", 0, 10, &entries).ok());
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].frame == "a whole message");
  }
}

}  // namespace
}  // namespace handoff::storage
