// storage/: the write-ahead log (log.h) and what the Committer and Store::Open make of it. A
// crash is a forked child that makes batches durable and then _exits without committing its
// LMDB transaction or running a destructor: what it was told is durable must be there when
// the store opens again.

#include "storage/log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/intent_id.h"
#include "storage/committer.h"
#include "storage/crc32c.h"
#include "storage/store.h"
#include "storage/write_set.h"
#include "support/temp_dir.h"

namespace handoff::storage {
namespace {

using testing::TempDir;

std::vector<std::pair<uint64_t, std::string>> ScanAll(const Log& log) {
  std::vector<std::pair<uint64_t, std::string>> out;
  REQUIRE(log.Scan([&](uint64_t seq, std::string_view payload) {
               out.emplace_back(seq, std::string(payload));
               return Status::OK();
             })
              .ok());
  return out;
}

// Overwrites one byte of `path` at `offset`.
void Scribble(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  char c = 'X';
  REQUIRE(::pwrite(fd, &c, 1, static_cast<off_t>(offset)) == 1);
  ::close(fd);
}

// Store::Open refuses the data directory as Corruption, with `why` in the message.
void CheckOpenRefused(const std::string& dir, const std::string& why) {
  auto store = Store::Open(dir, {}, "node-test");
  REQUIRE(!store.ok());
  CHECK(store.status().IsCorruption());
  CHECK(store.status().message().find(why) != std::string::npos);
}

// Runs `body` in a child process that then dies without cleaning up (as SIGKILL would leave
// it); returns once it has.
void InACrashingChild(const std::function<bool()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(body() ? 0 : 1);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("LogRecordsReadBackInOrderUntilOneIsTornStaleOrOutOfSequence") {
  TempDir dir;
  const std::string path = dir.path() + "/wal";
  auto log = Log::Open(path, 64 << 10, true);
  REQUIRE(log.ok());
  CHECK((*log)->bytes() == (64 << 10));
  CHECK(ScanAll(**log).empty());  // zeros: no record
  REQUIRE((*log)->Append(1, "one").ok());
  REQUIRE((*log)->Append(2, std::string(5000, 'b')).ok());  // spans two pages
  REQUIRE((*log)->Append(3, "three").ok());
  CHECK((*log)->offset() == 4 * Log::kAlign);
  auto records = ScanAll(**log);
  REQUIRE(records.size() == 3);
  CHECK(records[0] == std::make_pair(uint64_t{1}, std::string("one")));
  CHECK(records[1].second == std::string(5000, 'b'));
  CHECK(records[2].first == 3);

  // A record that does not fit in what is left, or in the file at all.
  CHECK(!(*log)->FitsEver(64 << 10));
  CHECK((*log)->Fits(4000));
  CHECK(!(*log)->Fits(60 << 10));
  CHECK((*log)->Append(4, std::string(60 << 10, 'x')).IsInvalidArgument());

  // Restarted, the log overwrites from the start; the records of the earlier pass that
  // follow are stale (their seqs do not follow on) and are not read.
  (*log)->Restart();
  REQUIRE((*log)->Append(10, "ten").ok());
  records = ScanAll(**log);
  REQUIRE(records.size() == 1);
  CHECK(records[0].first == 10);
  REQUIRE((*log)->Append(11, "eleven").ok());    // over the first page of record 2
  REQUIRE((*log)->Append(12, "twelve").ok());    // over its second page
  REQUIRE((*log)->Append(13, "thirteen").ok());  // over record 3
  CHECK(ScanAll(**log).size() == 4);

  // A torn record (one byte of its payload changed) ends the log before it.
  Scribble(path, 2 * Log::kAlign + Log::kHeaderBytes + 2);
  records = ScanAll(**log);
  REQUIRE(records.size() == 2);
  CHECK(records.back().first == 11);

  // Reopened, the file keeps its size and its records.
  log->reset();
  auto again = Log::Open(path, 16 << 10, true);
  REQUIRE(again.ok());
  CHECK((*again)->bytes() == (64 << 10));
  CHECK(ScanAll(**again).size() == 2);
}

TEST_CASE("Crc32cGivesTheStandardValuesOnEveryPathAndAtEveryOffset") {
  // RFC 3720, appendix B.4, and the usual check value.
  CHECK(Crc32c(0, std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(0, std::string(32, '\xFF')) == 0x62A8AB43u);
  CHECK(Crc32c(0, "123456789") == 0xE3069283u);
  CHECK(Crc32cPortable(0, "123456789") == 0xE3069283u);
  CHECK(Crc32c(0, "") == 0u);
  // The processor's path and the table's agree for every length and alignment, and a
  // checksum continued over a second piece is the checksum of the whole.
  std::string bytes(300, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  for (size_t start = 0; start < 9; ++start) {
    for (size_t length = 0; start + length <= bytes.size(); length += 13) {
      const std::string_view piece(bytes.data() + start, length);
      const uint32_t whole = Crc32c(0, piece);
      CHECK(whole == Crc32cPortable(0, piece));
      const size_t half = length / 2;
      CHECK(Crc32c(Crc32c(0, piece.substr(0, half)), piece.substr(half)) == whole);
    }
  }
  MESSAGE("CRC-32C on the processor's instruction: " << std::string(Crc32cAccelerated() ? "yes"
                                                                                        : "no"));
}

// Writes a record as release 1 of the log did (version 1, SipHash-2-4 checksum) at `offset`.
void WriteSipHashRecord(const std::string& path, uint64_t offset, uint64_t seq,
                        std::string_view payload) {
  REQUIRE(sodium_init() >= 0);
  static const unsigned char kKey[crypto_shorthash_KEYBYTES] = {
      'h', 'a', 'n', 'd', 'o', 'f', 'f', '-', 'w', 'a', 'l', '-', 'v', '1', '.', '0'};
  unsigned char header[Log::kHeaderBytes] = {'H', 'O', 'w', 'l', 1, 0, 0, 0};
  for (int i = 0; i < 8; ++i) header[8 + i] = static_cast<unsigned char>(seq >> (8 * i));
  for (int i = 0; i < 8; ++i) {
    header[16 + i] = static_cast<unsigned char>(payload.size() >> (8 * i));
  }
  unsigned char input[24 + crypto_shorthash_BYTES];
  std::memcpy(input, header, 24);
  crypto_shorthash(input + 24, reinterpret_cast<const unsigned char*>(payload.data()),
                   payload.size(), kKey);
  crypto_shorthash(header + 24, input, sizeof(input), kKey);
  std::string record(reinterpret_cast<const char*>(header), sizeof(header));
  record.append(payload);
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, record.data(), record.size(), static_cast<off_t>(offset)) ==
          static_cast<ssize_t>(record.size()));
  ::close(fd);
}

TEST_CASE("RecordsAnEarlierReleaseWroteWithSipHashAreStillReadAndStillChecked") {
  TempDir dir;
  const std::string path = dir.path() + "/wal";
  auto log = Log::Open(path, 64 << 10, true);
  REQUIRE(log.ok());
  WriteSipHashRecord(path, 0, 7, "seven");
  WriteSipHashRecord(path, Log::kAlign, 8, std::string(5000, 'e'));
  auto records = ScanAll(**log);
  REQUIRE(records.size() == 2);
  CHECK(records[0] == std::make_pair(uint64_t{7}, std::string("seven")));
  CHECK(records[1] == std::make_pair(uint64_t{8}, std::string(5000, 'e')));
  // A changed byte fails the old checksum as it fails the new one.
  Scribble(path, Log::kAlign + Log::kHeaderBytes + 4000);
  records = ScanAll(**log);
  REQUIRE(records.size() == 1);
  CHECK(records[0].first == 7);
}

TEST_CASE("WriteSetsEncodeAndDecodeToTheSameWritesAndMalformedBytesAreRefused") {
  WriteSet ws;
  ws.Put(3, "k1", "v1");
  ws.Put(3, "k0", std::string(300, 'v'));
  ws.Erase(5, "gone");
  ws.Put(7, std::string("\0key", 4), "");
  std::string bytes;
  ws.Encode(&bytes);
  WriteSet back;
  REQUIRE(WriteSet::Decode(bytes, &back).ok());
  for (Table t : {3u, 5u, 7u}) {
    REQUIRE(back.table(t).size() == ws.table(t).size());
    for (const auto& [key, entry] : ws.table(t)) {
      const WriteSet::Entry* got = back.Find(t, key);
      REQUIRE(got != nullptr);
      CHECK(got->erased == entry.erased);
      CHECK(got->value == entry.value);
    }
  }
  WriteSet junk;
  CHECK(WriteSet::Decode(bytes.substr(0, bytes.size() - 1), &junk).IsCorruption());
  CHECK(WriteSet::Decode(std::string("Q\x03\0\0\0\0", 6), &junk).IsCorruption());
  CHECK(WriteSet::Decode(std::string("P\x7f\0\0\0\0\0\0\0\0", 10), &junk).IsCorruption());
  CHECK(WriteSet::Decode(std::string("p\x7f\0\0", 4), &junk).IsCorruption());
  // A length that runs past five bytes or 32 bits, or past the end of the bytes.
  CHECK(WriteSet::Decode(std::string("p\x03\x80\x80\x80\x80\x80\x01", 8), &junk).IsCorruption());
  CHECK(WriteSet::Decode(std::string("p\x03\x80\x80\x80\x80\x10", 7), &junk).IsCorruption());
  CHECK(WriteSet::Decode(std::string("p\x03\x05key", 6), &junk).IsCorruption());
  CHECK(WriteSet::Decode(std::string("e\x03\x03ke", 5), &junk).IsCorruption());

  // Lengths of 128 and more take more than one varint byte.
  WriteSet big;
  big.Put(3, std::string(200, 'k'), std::string(70000, 'v'));
  std::string big_bytes;
  big.Encode(&big_bytes);
  CHECK(big_bytes.size() == 2 + 2 + 200 + 3 + 70000);
  WriteSet big_back;
  REQUIRE(WriteSet::Decode(big_bytes, &big_back).ok());
  REQUIRE(big_back.Find(3, std::string(200, 'k')) != nullptr);
  CHECK(big_back.Find(3, std::string(200, 'k'))->value.size() == 70000);

  // The log's records of schema 3 and before (ops 'P' and 'E', lengths u32 little-endian) are
  // still read: a log written before an upgrade is replayed after it.
  const std::string old_form =
      std::string("P\x03\x02\0\0\0k1\x02\0\0\0v1", 14) + std::string("E\x05\x04\0\0\0gone", 10);
  WriteSet old_back;
  REQUIRE(WriteSet::Decode(old_form, &old_back).ok());
  REQUIRE(old_back.Find(3, "k1") != nullptr);
  CHECK(old_back.Find(3, "k1")->value == "v1");
  REQUIRE(old_back.Find(5, "gone") != nullptr);
  CHECK(old_back.Find(5, "gone")->erased);
}

// Batch b stores idempotency keys b*100 .. b*100+99 (through the Store, into a write set, as
// handoffd's loop does) and deletes the first key of batch b-1.
std::string KeyOf(int n) { return "key" + std::to_string(100000 + n); }
std::string ValueOf(int b, int value_bytes) {
  return std::to_string(b) + std::string(static_cast<size_t>(value_bytes), 'v');
}
const IntentId kId;

std::vector<std::unique_ptr<WriteSet>> MakeBatches(Store& store, int count, int value_bytes) {
  std::vector<std::unique_ptr<WriteSet>> sets;
  for (int b = 0; b < count; ++b) {
    auto ws = std::make_unique<WriteSet>();
    auto txn = Txn::BeginLayered(store.env(), ws.get(), {});
    REQUIRE(txn.ok());
    for (int i = 0; i < 100; ++i) {
      REQUIRE(
          store.PutIdempotencyKey(*txn, "agent", KeyOf(b * 100 + i), kId, ValueOf(b, value_bytes))
              .ok());
    }
    if (b > 0) REQUIRE(store.DeleteIdempotencyKey(*txn, "agent", KeyOf((b - 1) * 100)).ok());
    sets.push_back(std::move(ws));
  }
  return sets;
}

// Checks that LMDB holds exactly what `batches` batches leave (the last one's values of
// `last_value_bytes`, when given).
void CheckHolds(Store& store, int batches, int value_bytes, int last_value_bytes = -1) {
  auto txn = store.BeginRead();
  REQUIRE(txn.ok());
  int wrong = 0;
  for (int b = 0; b <= batches; ++b) {
    for (int i = 0; i < 100; ++i) {
      IntentId id;
      std::string value;
      Status s = store.GetIdempotencyKey(*txn, "agent", KeyOf(b * 100 + i), &id, &value);
      const bool present = b < batches && !(i == 0 && b + 1 < batches);
      const int bytes = b == batches - 1 && last_value_bytes >= 0 ? last_value_bytes : value_bytes;
      if (present ? !(s.ok() && value == ValueOf(b, bytes)) : !s.IsNotFound()) ++wrong;
    }
  }
  CHECK(wrong == 0);
}

// In a child: makes `count` batches durable one by one, then dies.
void CrashAfterDurableBatches(const std::string& dir, const EnvOptions& options, int count,
                              int value_bytes) {
  InACrashingChild([&] {
    auto store = Store::Open(dir, options, "node-test");
    if (!store.ok()) return false;
    auto batches = MakeBatches(**store, count, value_bytes);
    Committer committer(**store, nullptr);
    for (const auto& ws : batches) {
      committer.Start(ws.get());
      Committer::Report r = committer.Wait();
      if (!r.durable || !r.durable->ok()) return false;
    }
    ::_exit(0);  // no destructor: the Committer's open transaction is never committed
  });
}

TEST_CASE("DurableBatchesNotYetInLmdbAreReplayedWhenTheStoreOpens") {
  TempDir dir;
  CrashAfterDurableBatches(dir.path(), {}, 3, 10);  // fewer than a commit's worth
  {
    // The log holds all three (LMDB at most the ones an idle moment let the child commit).
    auto log = Log::Open(dir.path() + "/wal", EnvOptions().log_bytes, false);
    REQUIRE(log.ok());
    CHECK(ScanAll(**log).size() == 3);
  }
  auto store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  CheckHolds(**store, 3, 10);
  CHECK((*store)->next_log_seq() == 4);
  {
    auto txn = (*store)->BeginRead();
    REQUIRE(txn.ok());
    CHECK(*(*store)->GetLogSeq(*txn) == 3);
  }
  // Opening again replays nothing more and changes nothing.
  store->reset();
  store = Store::Open(dir.path(), {}, "node-test");
  REQUIRE(store.ok());
  CheckHolds(**store, 3, 10);
}

TEST_CASE("ALogThatWrapsManyTimesStillReplaysExactlyWhatLmdbLacks") {
  TempDir dir;
  EnvOptions options;
  options.log_bytes = 64 << 10;  // a batch is ~12 KiB: the log restarts every few batches
  CrashAfterDurableBatches(dir.path(), options, 40, 100);
  auto store = Store::Open(dir.path(), options, "node-test");
  REQUIRE(store.ok());
  CheckHolds(**store, 40, 100);
  CHECK((*store)->next_log_seq() == 41);
}

TEST_CASE("ATornLastRecordIsNotReplayedAndAGapInTheLogIsRefused") {
  TempDir dir;
  CrashAfterDurableBatches(dir.path(), {}, 3, 10);
  {
    auto log = Log::Open(dir.path() + "/wal", EnvOptions().log_bytes, false);
    REQUIRE(log.ok());
    auto records = ScanAll(**log);
    REQUIRE(records.size() == 3);
    // Tear the third record: as if the machine lost power before its flush finished (it
    // was never acknowledged then).
    uint64_t third = 0;
    for (int i = 0; i < 2; ++i) {
      third +=
          (Log::kHeaderBytes + records[static_cast<size_t>(i)].second.size() + Log::kAlign - 1) /
          Log::kAlign * Log::kAlign;
    }
    Scribble(dir.path() + "/wal", third + Log::kHeaderBytes + 7);
  }
  {
    auto store = Store::Open(dir.path(), {}, "node-test");
    REQUIRE(store.ok());
    CheckHolds(**store, 2, 10);
    CHECK((*store)->next_log_seq() == 3);
  }

  // A log whose first record is past what LMDB holds plus one: batches went missing.
  {
    auto log = Log::Open(dir.path() + "/wal", EnvOptions().log_bytes, false);
    REQUIRE(log.ok());
    WriteSet ws;
    ws.Put(2, "k", "v");
    std::string bytes;
    ws.Encode(&bytes);
    REQUIRE((*log)->Append(9, bytes).ok());
  }
  CheckOpenRefused(dir.path(), "inconsistent");
}

TEST_CASE("ARecordThatChecksOutButDoesNotParseStopsTheOpenWithAClearError") {
  TempDir dir;
  { REQUIRE(Store::Open(dir.path(), {}, "node-test").ok()); }
  {
    auto log = Log::Open(dir.path() + "/wal", EnvOptions().log_bytes, false);
    REQUIRE(log.ok());
    REQUIRE((*log)->Append(1, "not a write set").ok());
  }
  for (int i = 0; i < 2; ++i) {  // refused every time: the log is kept for whoever looks
    CheckOpenRefused(dir.path(), "replaying batch 1");
  }
}

TEST_CASE("ABatchTooBigForTheLogIsCommittedToLmdbAndSyncedOnItsOwn") {
  TempDir dir;
  EnvOptions options;
  options.log_bytes = 64 << 10;
  auto store = Store::Open(dir.path(), options, "node-test");
  REQUIRE(store.ok());
  // Two small batches (logged, held), then one of ~100 KiB (more than the whole log).
  auto small = MakeBatches(**store, 2, 10);
  WriteSet big;
  {
    auto txn = Txn::BeginLayered((*store)->env(), &big, {});
    REQUIRE(txn.ok());
    for (int i = 0; i < 100; ++i) {
      REQUIRE(
          (*store)->PutIdempotencyKey(*txn, "agent", KeyOf(200 + i), kId, ValueOf(2, 1000)).ok());
    }
    REQUIRE((*store)->DeleteIdempotencyKey(*txn, "agent", KeyOf(100)).ok());
  }
  Committer committer(**store, nullptr);
  size_t applied = 0;
  for (const auto& ws : small) {
    committer.Start(ws.get());
    Committer::Report r = committer.Wait();
    REQUIRE(r.durable.has_value());
    REQUIRE(r.durable->ok());
    applied += r.applied;
  }
  committer.Start(&big);
  Committer::Report r = committer.Wait();
  REQUIRE(r.durable.has_value());
  REQUIRE(r.durable->ok());
  // Durable and in LMDB at once, with the two held before it.
  CHECK(applied + r.applied == 3);
  CheckHolds(**store, 3, 10, 1000);
}

// Batches of one write each, `value_bytes` long, numbered from `first`.
std::vector<std::unique_ptr<WriteSet>> OneWriteBatches(Store& store, int first, int count,
                                                       int value_bytes) {
  std::vector<std::unique_ptr<WriteSet>> sets;
  for (int b = first; b < first + count; ++b) {
    auto ws = std::make_unique<WriteSet>();
    auto txn = Txn::BeginLayered(store.env(), ws.get(), {});
    REQUIRE(txn.ok());
    REQUIRE(store.PutIdempotencyKey(*txn, "agent", KeyOf(b), kId, ValueOf(b, value_bytes)).ok());
    sets.push_back(std::move(ws));
  }
  return sets;
}

// Makes `batches` durable one at a time with a Committer that never commits for idleness;
// returns how many of them it reported in LMDB before the last was durable, and waits
// (bounded) until every one of them is: the last one makes the transaction due.
size_t AppliedBeforeTheLast(Committer& committer,
                            const std::vector<std::unique_ptr<WriteSet>>& batches) {
  size_t applied = 0, before_last = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (i + 1 == batches.size()) before_last = applied;
    committer.Start(batches[i].get());
    Committer::Report r = committer.Wait();
    REQUIRE(r.durable.has_value());
    REQUIRE(r.durable->ok());
    applied += r.applied;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (applied < batches.size() && std::chrono::steady_clock::now() < until) {
    applied += committer.Take().applied;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(applied == batches.size());
  return before_last;
}

// LMDB's transaction is committed once it holds kFewHeld batches carrying kEnoughHeldBytes,
// and small batches (a node at a few round trips in flight) are held up to kMaxHeld, so that
// fewer of them wait behind a commit's flush.
TEST_CASE("SmallBatchesAreHeldOutOfLmdbLongerThanLargeOnes") {
  static_assert(Committer::kFewHeld < Committer::kMaxHeld);
  TempDir dir;
  auto store = Store::Open(dir.path(), EnvOptions(), "node-test");
  REQUIRE(store.ok());
  const int small_bytes = 100;
  const int large_bytes = static_cast<int>(Committer::kEnoughHeldBytes / Committer::kFewHeld) + 100;
  static_assert(Committer::kMaxHeld * 200 < Committer::kEnoughHeldBytes);
  auto small = OneWriteBatches(**store, 0, Committer::kMaxHeld, small_bytes);
  auto large = OneWriteBatches(**store, 1000, Committer::kFewHeld, large_bytes);
  // Idle commits put off for an hour: every commit here is due to what is held.
  Committer committer(**store, nullptr, std::chrono::microseconds(0), std::chrono::hours(1));
  // A commit due earlier than the last batch is reported by a later batch's Wait, or counted.
  CHECK(AppliedBeforeTheLast(committer, small) == 0);
  const uint64_t commits = committer.lmdb_commits();
  CHECK(commits == 1);
  CHECK(AppliedBeforeTheLast(committer, large) == 0);
  CHECK(committer.lmdb_commits() == commits + 1);
  auto txn = (*store)->BeginRead();
  REQUIRE(txn.ok());
  for (int b : {0, static_cast<int>(Committer::kMaxHeld) - 1, 1000,
                1000 + static_cast<int>(Committer::kFewHeld) - 1}) {
    IntentId id;
    std::string value;
    REQUIRE((*store)->GetIdempotencyKey(*txn, "agent", KeyOf(b), &id, &value).ok());
    CHECK(value == ValueOf(b, b < 1000 ? small_bytes : large_bytes));
  }
}

// A Committer that busy-polls (handoffd's default) takes a batch that comes while it is still
// looking and one that comes after it went to sleep, and stops while it is looking.
TEST_CASE("ABusyPollingCommitterTakesBatchesWhileLookingAndAfterSleeping") {
  TempDir dir;
  auto store = Store::Open(dir.path(), EnvOptions(), "node-test");
  REQUIRE(store.ok());
  auto batches = MakeBatches(**store, 6, 10);
  int events = 0;
  {
    Committer committer(
        **store, [&] { ++events; }, std::chrono::milliseconds(5));
    size_t applied = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      // Even batches come at once (the thread is looking); odd ones after it looked for 5 ms
      // and went to sleep.
      if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      committer.Start(batches[i].get());
      Committer::Report r = committer.Wait();
      REQUIRE(r.durable.has_value());
      REQUIRE(r.durable->ok());
      applied += r.applied;
    }
    applied += committer.Drain().applied;
    CHECK(applied == batches.size());
  }  // destroyed within its 5 ms of looking after the drain
  CHECK(events >= static_cast<int>(batches.size()));
  CheckHolds(**store, static_cast<int>(batches.size()), 10);
}

// A disk that fills up after batches were logged: the LMDB commit that should take them fails.
// Here the child limits the size of file it may write (RLIMIT_FSIZE) to the log's size, so the
// preallocated log is still written but LMDB's data file cannot grow past it.
TEST_CASE("WhenTheDataFileCannotBeWrittenLoggedBatchesWaitInTheLogAndNewOnesAreRefused") {
  TempDir dir;
  EnvOptions options;
  options.log_bytes = 64 << 10;  // a batch of 100-byte values is ~15 KiB: four fit
  constexpr int kValueBytes = 100;
  InACrashingChild([&] {
    auto fail = [](const char* what) {
      std::fprintf(stderr, "in the child: %s\n", what);
      return false;
    };
    auto store = Store::Open(dir.path(), options, "node-test");
    if (!store.ok()) return fail("the store does not open");
    auto batches = MakeBatches(**store, 6, kValueBytes);
    std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
    rlimit limit{};
    limit.rlim_cur = options.log_bytes;
    limit.rlim_max = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return fail("setrlimit");

    Committer committer(**store, nullptr);
    size_t applied = 0;
    auto run = [&](size_t b) {
      committer.Start(batches[b].get());
      Committer::Report r = committer.Wait();
      applied += r.applied;
      return r.durable.value_or(Status::IOError("no outcome"));
    };
    for (size_t b = 0; b < 4; ++b) {
      if (!run(b).ok()) return fail("a batch that fits the log was not made durable");
    }
    // The fifth needs the log's room: the four must go into LMDB first, and cannot.
    if (run(4).ok()) return fail("a batch was accepted although LMDB cannot take the log's");
    Status refused = run(4);
    if (refused.ok() || refused.message().find("refused") == std::string::npos) {
      return fail("a batch after the failed commit was not refused with a clear error");
    }
    if (applied != 0) return fail("batches were reported in LMDB although its commit failed");

    // Room again: the Committer's retry (once a second) puts the four into LMDB unprompted.
    limit.rlim_cur = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return fail("setrlimit");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (applied < 4 && std::chrono::steady_clock::now() < deadline) {
      applied += committer.Take().applied;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (applied != 4) return fail("the held batches did not reach LMDB once it had room");
    for (size_t b = 4; b < 6; ++b) {
      if (!run(b).ok()) return fail("a batch was refused after the data file had room again");
    }
    ::_exit(0);  // a crash: the last two are in the log alone
  });
  auto store = Store::Open(dir.path(), options, "node-test");
  REQUIRE(store.ok());
  CheckHolds(**store, 6, kValueBytes);
  CHECK((*store)->next_log_seq() == 7);
}

}  // namespace
}  // namespace handoff::storage
