// storage/: the LMDB wrapper, the typed tables and the data-dir lock, on real files.

#include <doctest/doctest.h>

#include <optional>
#include <string_view>
#include <vector>

#include "storage/dir_lock.h"
#include "storage/lmdb.h"
#include "storage/store.h"
#include "storage/write_set.h"
#include "support/temp_dir.h"

namespace handoff::storage {
namespace {

using testing::TempDir;

TEST_CASE("ACommittedTransactionSurvivesReopeningAndAnAbortedOneLeavesNoTrace") {
  TempDir dir;
  {
    auto env = Env::Open(dir.path(), {});
    REQUIRE(env.ok());
    auto txn = Txn::BeginWrite(**env);
    REQUIRE(txn.ok());
    auto table = txn->OpenTable("t");
    REQUIRE(table.ok());
    REQUIRE(txn->Put(*table, "kept", "1").ok());
    REQUIRE(txn->Commit().ok());

    auto aborted = Txn::BeginWrite(**env);
    REQUIRE(aborted.ok());
    REQUIRE(aborted->Put(*table, "dropped", "2").ok());
    // Destroyed without Commit: aborted.
  }
  auto env = Env::Open(dir.path(), {});
  REQUIRE(env.ok());
  auto txn = Txn::BeginRead(**env);
  REQUIRE(txn.ok());
  auto table = txn->OpenTable("t");
  REQUIRE(table.ok());
  std::string_view value;
  REQUIRE(txn->Get(*table, "kept", &value).ok());
  CHECK(value == "1");
  CHECK(txn->Get(*table, "dropped", &value).IsNotFound());
  CHECK(txn->Delete(*table, "absent").ok() == false);  // read-only: refused, not a crash
}

TEST_CASE("AFullMapIsResourceExhaustedWithAHint") {
  TempDir dir;
  EnvOptions options;
  options.map_size = 1 << 20;  // 1 MiB
  auto env = Env::Open(dir.path(), options);
  REQUIRE(env.ok());
  Status s;
  for (int i = 0; i < 1000 && s.ok(); ++i) {
    auto txn = Txn::BeginWrite(**env);
    REQUIRE(txn.ok());
    auto table = txn->OpenTable("t");
    REQUIRE(table.ok());
    s = txn->Put(*table, "key" + std::to_string(i), std::string(64 * 1024, 'x'));
    if (s.ok()) s = txn->Commit();
  }
  CHECK(s.IsResourceExhausted());
  CHECK(s.message().find("map_size") != std::string::npos);
}

TEST_CASE("OnlyOneDaemonMayLockADataDirectory") {
  TempDir dir;
  auto first = DirLock::Acquire(dir.path());
  REQUIRE(first.ok());
  auto second = DirLock::Acquire(dir.path());
  CHECK(second.status().IsUnavailable());
  CHECK(second.status().message().find("in use by another handoffd") != std::string::npos);
  first->reset();
  CHECK(DirLock::Acquire(dir.path()).ok());
}

TEST_CASE("AStoreRefusesToOpenUnderAnotherNodeName") {
  TempDir dir;
  REQUIRE(Store::Open(dir.path(), {}, "node-a").ok());
  auto other = Store::Open(dir.path(), {}, "node-b");
  CHECK(other.status().IsInvalidArgument());
  CHECK(other.status().message().find("belongs to node 'node-a'") != std::string::npos);
  CHECK(Store::Open(dir.path(), {}, "node-a").ok());
}

TEST_CASE("QueuesAreFifoPerAddress") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(store.ok());
  Store& s = **store;
  IntentId a = NewIntentId(1000), b = NewIntentId(2000), c = NewIntentId(3000);
  {
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(s.Enqueue(*txn, "agent://x/y/z", b).ok());
    REQUIRE(s.Enqueue(*txn, "agent://x/y/z", a).ok());
    REQUIRE(s.Enqueue(*txn, "agent://x/y/zz", c).ok());  // a longer address sharing a prefix
    REQUIRE(txn->Commit().ok());
  }
  auto txn = s.BeginWrite();
  REQUIRE(txn.ok());
  auto first = s.FirstQueued(*txn, "agent://x/y/z");
  REQUIRE(first.ok());
  CHECK(*first == std::optional<IntentId>(a));
  REQUIRE(s.Dequeue(*txn, "agent://x/y/z", a).ok());
  CHECK(*s.FirstQueued(*txn, "agent://x/y/z") == std::optional<IntentId>(b));
  REQUIRE(s.Dequeue(*txn, "agent://x/y/z", b).ok());
  CHECK_FALSE(s.FirstQueued(*txn, "agent://x/y/z")->has_value());
  CHECK(*s.FirstQueued(*txn, "agent://x/y/zz") == std::optional<IntentId>(c));
  CHECK_FALSE(s.FirstQueued(*txn, "agent://x/y")->has_value());
  // Keys are built on the stack up to the longest valid address; a longer one still works.
  for (size_t length : {size_t{255}, size_t{256}, size_t{300}}) {
    const std::string address = "agent://" + std::string(length - 8, 'q');
    REQUIRE(s.Enqueue(*txn, address, c).ok());
    CHECK(*s.FirstQueued(*txn, address) == std::optional<IntentId>(c));
    CHECK(*s.FirstQueued(*txn, address, &c) == std::optional<IntentId>(c));
    CHECK(*s.CountQueued(*txn, address, 10) == 1);
    REQUIRE(s.Dequeue(*txn, address, c).ok());
    CHECK_FALSE(s.FirstQueued(*txn, address)->has_value());
  }
  IntentRecord r;
  CHECK(s.GetIntent(*txn, a, &r).IsNotFound());
}

TEST_CASE("AnIntentQueuedAndTakenBeforeItsBatchIsLoggedLeavesNoQueueWrite") {
  // The loop's turns write into one set until the Committer takes it: an intent sent and
  // delivered within them must cost the log nothing for its queue entry.
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(store.ok());
  Store& s = **store;
  const IntentId held = NewIntentId(1000), quick = NewIntentId(2000);
  {
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(s.Enqueue(*txn, "agent://x/y/z", held).ok());
    REQUIRE(txn->Commit().ok());
  }
  storage::WriteSet ws;
  auto txn = Txn::BeginLayered(s.env(), &ws, {});
  REQUIRE(txn.ok());
  REQUIRE(s.Enqueue(*txn, "agent://x/y/z", quick).ok());
  REQUIRE(s.Dequeue(*txn, "agent://x/y/z", quick).ok());
  std::string bytes;
  ws.Encode(&bytes);
  CHECK(bytes.empty());
  // One already in LMDB leaves the tombstone its removal needs.
  CHECK(*s.FirstQueued(*txn, "agent://x/y/z") == std::optional<IntentId>(held));
  REQUIRE(s.Dequeue(*txn, "agent://x/y/z", held).ok());
  CHECK_FALSE(s.FirstQueued(*txn, "agent://x/y/z")->has_value());
  ws.Encode(&bytes);
  CHECK_FALSE(bytes.empty());
}

// The seqs of `peer`'s outbox entries, in order.
std::vector<uint64_t> OutboxSeqs(Store& s, const Txn& txn, std::string_view peer) {
  std::vector<OutboxEntry> entries;
  REQUIRE(s.ReadOutbox(txn, peer, 0, 1000, &entries).ok());
  std::vector<uint64_t> seqs;
  for (const OutboxEntry& e : entries) seqs.push_back(e.seq);
  return seqs;
}

// A forwarded intent's message as the engine stores it: its frame with a nil where the
// payload goes, and the payload as the intent's blob.
struct Forward {
  std::string without;  // the frame, a nil at `offset`
  std::string whole;    // the frame with the payload in place
  size_t offset;
};
Forward MakeForward(std::string_view payload) {
  Forward f;
  f.without = std::string(
                  "\xdf\x00\x00\x00\x01\xa4"
                  "body",
                  10) +
              '\xc0' + std::string("\xc0");
  f.offset = f.without.size() - 2;
  f.whole = f.without.substr(0, f.offset) + std::string(payload) + f.without.substr(f.offset + 1);
  return f;
}

TEST_CASE("AForwardStoredWithoutItsPayloadIsReadWholeAndKeptWholeWhenItsIntentIsPurged") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(store.ok());
  Store& s = **store;
  const std::string payload = "\xa5hello";
  const Forward f = MakeForward(payload);
  IntentRecord waiting, acked;
  waiting.id = NewIntentId(1000);
  acked.id = NewIntentId(2000);
  for (IntentRecord* r : {&waiting, &acked}) {
    r->target_node = "node-b";
    r->status = IntentStatus::kCanceled;
  }
  {
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    uint64_t seq = 0;
    for (IntentRecord* r : {&waiting, &acked}) {
      r->forward_seq = ++seq;  // as the engine notes it
      REQUIRE(s.PutIntent(*txn, *r).ok());
      REQUIRE(s.PutBlob(*txn, r->id, BlobKind::kPayload, payload).ok());
      const OutboxPayload ref{r->id, f.offset};
      REQUIRE(s.PutOutbox(*txn, "node-b", seq, 7, f.without, &ref).ok());
    }
    REQUIRE(s.PutOutbox(*txn, "node-b", 3, 8, "whole").ok());  // stored whole: read as it is
    // A frame with no nil where the payload would go is refused.
    const OutboxPayload wrong{waiting.id, 0};
    CHECK(s.PutOutbox(*txn, "node-b", 4, 9, f.without, &wrong).IsInvalidArgument());
    REQUIRE(txn->Commit().ok());
  }
  auto frames = [&](const Txn& txn) {
    std::vector<OutboxEntry> entries;
    REQUIRE(s.ReadOutbox(txn, "node-b", 0, 1000, &entries).ok());
    std::vector<std::string> out;
    for (const OutboxEntry& e : entries) out.emplace_back(e.frame);
    return out;
  };
  {
    auto txn = s.BeginRead();
    REQUIRE(txn.ok());
    CHECK(frames(*txn) == std::vector<std::string>{f.whole, f.whole, "whole"});
    // The byte limit counts a message with its payload.
    std::vector<OutboxEntry> first;
    REQUIRE(s.ReadOutbox(*txn, "node-b", 0, 1000, &first, 8 + f.whole.size()).ok());
    CHECK(first.size() == 1);
  }
  {
    // The second was acknowledged (trimmed); both intents are purged: the first's message,
    // still waiting, keeps its payload, and nothing of either intent is left in the blobs.
    // Their records, read back, name their messages.
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    IntentRecord stored;
    REQUIRE(s.GetIntent(*txn, waiting.id, &stored).ok());
    CHECK(stored.forward_seq == 1);
    REQUIRE(*s.TrimOutbox(*txn, "node-b", uint64_t{1}, 2) == 1);
    REQUIRE(s.PurgeIntent(*txn, waiting).ok());
    REQUIRE(s.PurgeIntent(*txn, acked).ok());
    REQUIRE(txn->Commit().ok());
  }
  auto txn = s.BeginRead();
  REQUIRE(txn.ok());
  CHECK(frames(*txn) == std::vector<std::string>{f.whole, "whole"});
  for (const IntentRecord* r : {&waiting, &acked}) {
    std::string_view v;
    CHECK(s.GetBlobView(*txn, r->id, BlobKind::kPayload, &v).IsNotFound());
  }
}

TEST_CASE("AForwardWhosePayloadIsGoneIsReportedAsCorruptionNotSentWithout") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(store.ok());
  Store& s = **store;
  const Forward f = MakeForward("\xa1x");
  const IntentId id = NewIntentId(1000);
  auto txn = s.BeginWrite();
  REQUIRE(txn.ok());
  const OutboxPayload ref{id, f.offset};
  REQUIRE(s.PutOutbox(*txn, "node-b", 1, 6, "before").ok());
  REQUIRE(s.PutOutbox(*txn, "node-b", 2, 7, f.without, &ref).ok());  // no payload blob
  REQUIRE(s.PutOutbox(*txn, "node-b", 3, 8, "after").ok());
  // What lies before the damaged entry is read; a read that starts at it fails, naming it.
  std::vector<OutboxEntry> entries;
  REQUIRE(s.ReadOutbox(*txn, "node-b", 0, 1000, &entries).ok());
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].frame == "before");
  entries.clear();
  Status read = s.ReadOutbox(*txn, "node-b", 2, 1000, &entries);
  CHECK(read.IsCorruption());
  CHECK(read.message().find(id.ToString()) != std::string::npos);
  // Where the link starts, and how old its oldest message is, are still read (a daemon with
  // such an entry starts, and its link reports the error as it tries to send).
  auto head = s.FirstOutbox(*txn, "node-b", 2);
  REQUIRE(head.ok());
  REQUIRE(head->has_value());
  CHECK((*head)->seq == 2);
  CHECK((*head)->queued_at_ms == 7);
  CHECK_FALSE(s.FirstOutbox(*txn, "node-b", 4)->has_value());
  CHECK_FALSE(s.FirstOutbox(*txn, "node-a", 0)->has_value());
}

TEST_CASE("AnOutboxEntryWhoseHeaderTheDiskDamagedIsCorruptionNeverACrash") {
  // The header of an entry stored without its payload comes from the disk: cut short, an
  // offset past its message (the largest a u32 holds), no nil at the offset, an intent with no
  // payload.
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(store.ok());
  Store& s = **store;
  const Forward f = MakeForward("\xa1x");
  const IntentId id = NewIntentId(1000);
  auto header = [&](uint32_t offset, std::string_view id_bytes) {
    std::string h(8, '\0');  // queued_at
    h.push_back('S');
    for (int shift = 24; shift >= 0; shift -= 8) h.push_back(static_cast<char>(offset >> shift));
    h.append(id_bytes);
    return h;
  };
  const std::string valid_id(id.bytes());
  const std::vector<std::string> damaged = {
      std::string(8, '\0') + "S\x00\x00",        // cut short
      header(UINT32_MAX, valid_id) + f.without,  // offset past the end
      header(0, valid_id) + f.without,           // no nil at the offset
      header(static_cast<uint32_t>(f.offset), std::string(16, '\0')) +
          f.without,  // names no payload
  };
  auto txn = s.BeginWrite();
  REQUIRE(txn.ok());
  REQUIRE(s.PutBlob(*txn, id, BlobKind::kPayload, "\xa1x").ok());
  auto outbox = txn->OpenTable(kOutboxTable);
  REQUIRE(outbox.ok());
  for (const std::string& value : damaged) {
    std::string key = "node-b";
    key.push_back('\0');
    key.append(7, '\0');
    key.push_back('\x01');
    REQUIRE(txn->Put(*outbox, key, value).ok());
    std::vector<OutboxEntry> entries;
    CHECK(s.ReadOutbox(*txn, "node-b", 0, 10, &entries).IsCorruption());
    CHECK(entries.empty());
  }
}

TEST_CASE("AnOutboxIsTrimmedByKeyAfterItsLastTrimOrFromItsFirstEntry") {
  TempDir dir;
  auto store = Store::Open(dir.path(), {}, "node-a");
  REQUIRE(store.ok());
  Store& s = **store;
  {
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    for (uint64_t seq = 1; seq <= 10; ++seq) REQUIRE(s.PutOutbox(*txn, "node-b", seq, 0, "m").ok());
    // A peer whose name starts with the other's: never touched by its trims.
    for (uint64_t seq = 1; seq <= 3; ++seq) REQUIRE(s.PutOutbox(*txn, "node-bb", seq, 0, "m").ok());
    REQUIRE(txn->Commit().ok());
  }
  // In a layered transaction, as the loop trims: by key after the last trim, then from the
  // first entry held (after a failed commit), then by key again over keys already deleted.
  WriteSet top;
  {
    auto txn = Txn::BeginLayered(s.env(), &top, {});
    REQUIRE(txn.ok());
    CHECK(*s.TrimOutbox(*txn, "node-b", uint64_t{0}, 4) == 4);
    CHECK(OutboxSeqs(s, *txn, "node-b") == std::vector<uint64_t>{5, 6, 7, 8, 9, 10});
    CHECK(*s.TrimOutbox(*txn, "node-b", uint64_t{4}, 4) == 0);
    CHECK(*s.TrimOutbox(*txn, "node-b", std::nullopt, 7) == 3);
    CHECK(OutboxSeqs(s, *txn, "node-b") == std::vector<uint64_t>{8, 9, 10});
    REQUIRE(s.TrimOutbox(*txn, "node-b", uint64_t{2}, 8).ok());
    CHECK(OutboxSeqs(s, *txn, "node-b") == std::vector<uint64_t>{9, 10});
    CHECK(OutboxSeqs(s, *txn, "node-bb") == std::vector<uint64_t>{1, 2, 3});
    CHECK((*s.FirstOutbox(*txn, "node-b", 0))->seq == 9);
  }
  // Applied to LMDB (keys deleted twice, or never there, included), and in a plain one.
  {
    auto txn = s.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(top.ApplyTo(*txn).ok());
    CHECK(OutboxSeqs(s, *txn, "node-b") == std::vector<uint64_t>{9, 10});
    CHECK(*s.TrimOutbox(*txn, "node-b", uint64_t{8}, 12) == 4);
    CHECK(OutboxSeqs(s, *txn, "node-b").empty());
    REQUIRE(txn->Commit().ok());
  }
  auto txn = s.BeginRead();
  REQUIRE(txn.ok());
  CHECK(OutboxSeqs(s, *txn, "node-b").empty());
  CHECK(OutboxSeqs(s, *txn, "node-bb") == std::vector<uint64_t>{1, 2, 3});
}

}  // namespace
}  // namespace handoff::storage
