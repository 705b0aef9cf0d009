// A thin RAII wrapper over LMDB: an environment, transactions and cursors.
//
// This is the only file that speaks MDB_* codes; everything above it sees Status. A Txn aborts
// in its destructor unless committed, so an early return can never leave a transaction open.
// Keys and values are byte strings; a value returned by Get or a Cursor points into the memory
// map and is valid only until the transaction ends or the next write through it.
//
// A layered Txn (BeginLayered) reads an LMDB snapshot with write sets on top and writes into the
// topmost one instead of LMDB; its cursors merge the layers. That is how handoffd's loop goes on
// with the next turn while the Committer makes the previous ones durable.
//
// Thread safety: an Env may be shared; each Txn and Cursor belongs to one thread. handoffd's
// loop thread reads and runs layered transactions; its Committer thread is LMDB's only writer.

#ifndef HANDOFF_STORAGE_LMDB_H_
#define HANDOFF_STORAGE_LMDB_H_

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "handoff/status.h"

namespace handoff::storage {

struct EnvOptions {
  // Largest size the data file may grow to; writes beyond it fail with ResourceExhausted.
  // Default: 1 GiB.
  uint64_t map_size = uint64_t{1} << 30;
  // Flush what is committed. On, a commit flushes its data pages (fdatasync) but writes its
  // meta page without a flush of its own (MDB_NOMETASYNC): the next commit's flush, or Sync,
  // makes it durable, and until then a crash of the machine may undo the last commit but
  // never corrupts the file. The write-ahead log (log.h) is what makes each batch durable.
  // Off, nothing is flushed and a crash of the machine (not of the process) may lose the last
  // commits. Default: true.
  bool sync = true;
  // Size of the write-ahead log (Store::Open); 0 for none, when every batch is committed to
  // LMDB and synced. Default: 16 MiB.
  uint64_t log_bytes = uint64_t{16} << 20;
  // Named tables the environment may hold. Default: 16.
  unsigned max_tables = 16;
};

// OK when this process can map a data file of `map_size` bytes: LMDB reserves the whole map
// in the address space when it opens. Past it (an address-space limit, RLIMIT_AS, or beyond
// what a 64-bit process can address), InvalidArgument naming map_size, the bound and why.
Status CheckMapSize(uint64_t map_size);

// Maps an LMDB return code to a Status; `what` names the operation for the message.
Status MdbStatus(int rc, std::string_view what);

class Env {
 public:
  // Opens (creating if needed) the environment in directory `dir`.
  static Result<std::unique_ptr<Env>> Open(const std::string& dir, const EnvOptions& options);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  const EnvOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }

  // Bytes of the map in use (last page number times page size): the data file's high-water
  // mark. Pages freed since are reused before the file grows.
  Result<uint64_t> UsedBytes() const;
  // Makes every commit so far durable, meta page included (with sync on; a no-op off).
  Status Sync();
  uint64_t map_size() const { return options_.map_size; }

 private:
  Env(MDB_env* env, std::string dir, EnvOptions options)
      : env_(env), dir_(std::move(dir)), options_(options) {}
  MDB_env* env_;
  std::string dir_;
  EnvOptions options_;
};

using Table = MDB_dbi;

class WriteSet;

class Txn {
 public:
  static Result<Txn> BeginWrite(Env& env);
  static Result<Txn> BeginRead(Env& env);
  // Reads a snapshot of LMDB under `below` (newest first; at most kMaxBelow, each may be
  // null) under `top`, and writes into `top`; with no `top` it only reads (a view of what is
  // stored, and what is on its way into LMDB). Commit is refused: the caller hands the write
  // sets to a Committer. The write sets must outlive the Txn and its cursors, and `below` must
  // not change meanwhile. At most the batches a Committer holds out of LMDB (kMaxHeld) and the
  // one it is logging.
  static constexpr size_t kMaxBelow = 49;
  static Result<Txn> BeginLayered(Env& env, WriteSet* top, std::span<const WriteSet* const> below);
  static Result<Txn> BeginLayered(Env& env, WriteSet* top,
                                  std::initializer_list<const WriteSet*> below) {
    return BeginLayered(env, top, std::span<const WriteSet* const>(below.begin(), below.size()));
  }

  Txn(Txn&& other) noexcept
      : txn_(other.txn_),
        write_(other.write_),
        layered_(other.layered_),
        top_(other.top_),
        below_(other.below_),
        below_count_(other.below_count_) {
    other.txn_ = nullptr;
  }
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { Abort(); }

  // Makes the writes durable (fsync unless the environment has sync off). The Txn is finished
  // afterwards whatever the outcome.
  Status Commit();
  // Discards the writes. Safe to call twice.
  void Abort();

  bool is_write() const { return write_; }
  MDB_txn* raw() const { return txn_; }

  // Opens a named table, creating it in a write transaction.
  Result<Table> OpenTable(const char* name);

  // NotFound if the key is absent.
  Status Get(Table table, std::string_view key, std::string_view* value) const;
  Status Put(Table table, std::string_view key, std::string_view value);
  // Put of a key the caller knows is absent from the store as this transaction reads it
  // (WriteSet::PutNew): in a layered transaction, a Delete of it in the same top set leaves
  // no tombstone. A Put in a plain one.
  Status PutNew(Table table, std::string_view key, std::string_view value);
  // Put for a key greater than every key in the table (a sequence number): skips the search.
  // Fails (InvalidArgument) if the key is not the greatest.
  Status Append(Table table, std::string_view key, std::string_view value);
  // Removes the key; OK whether or not it was present.
  Status Delete(Table table, std::string_view key);
  // Number of entries in the table (LMDB's count: refused in a layered transaction).
  Result<uint64_t> Count(Table table) const;
  // Bytes on free pages below the high-water mark, waiting to be reused (LMDB's freelist as
  // this transaction sees it).
  Result<uint64_t> FreeBytes() const;

 private:
  friend class Cursor;
  Txn(MDB_txn* txn, bool write) : txn_(txn), write_(write) {}
  MDB_txn* txn_;
  bool write_;
  bool layered_ = false;
  WriteSet* top_ = nullptr;  // layered: where writes go (null in a read-only view)
  std::array<const WriteSet*, kMaxBelow> below_ = {};  // layered: older writes, newest first
  size_t below_count_ = 0;                             // of below_ in use
};

// Iterates one table inside one transaction. Positioning calls return false at the end of the
// table or on error; status() tells which. In a layered transaction it merges the write sets
// over LMDB (the newest layer wins; tombstones hide keys).
class Cursor {
 public:
  static Result<Cursor> Open(const Txn& txn, Table table);
  Cursor(Cursor&& other) noexcept;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor();

  bool First();
  bool Last();
  bool Next();
  bool Prev();
  // Positions at the first key >= `key`.
  bool Seek(std::string_view key);
  // Positions at the last key <= `key`.
  bool SeekLastAtOrBefore(std::string_view key);

  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  const Status& status() const { return status_; }

  // Deletes the entry under the cursor. Position the cursor again (Seek, First) before reading.
  Status DeleteCurrent();

  // Writes through the cursor, in a plain (not layered) write transaction only. For a run of
  // keys in order these beat Txn::Put and Txn::Delete, which start a new cursor and search
  // down from the root each time: Put and Erase search only the cursor's leaf page when the
  // key falls within it, and Append (`key` sorting after every key of the table, MDB_APPEND;
  // any other is refused) searches only once for the whole run. Erase of a missing key is OK.
  // The cursor is left positioned for the next write, not for reading.
  Status Put(std::string_view key, std::string_view value);
  Status Erase(std::string_view key);
  Status Append(std::string_view key, std::string_view value);

 private:
  struct Merge;
  enum class Place : int;
  explicit Cursor(MDB_cursor* cursor);
  bool Move(MDB_cursor_op op, std::string_view seek = {});
  // Merged cursors: position every source (MergeTo) or move the ones at the current key one
  // step (Step), then pick the current key, stepping over tombstones (Settle).
  bool MergeTo(Place place, std::string_view key);
  void Step(bool forward);
  bool Settle();
  MDB_cursor* cursor_;
  std::string_view key_;
  std::string_view value_;
  Status status_;
  std::unique_ptr<Merge> merge_;  // set in a layered transaction
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_LMDB_H_
