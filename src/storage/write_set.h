// WriteSet: writes that are not in LMDB yet, kept in memory in key order.
//
// The loop thread runs its turns against a snapshot of LMDB with the write sets of the turns
// that are not durable yet layered on top (Txn::BeginLayered); the Committer applies a write
// set to LMDB in one write transaction and commits it, on its own thread, while the loop goes
// on. Each table holds key -> value, or a tombstone for a deleted key, so a layer can hide what
// a lower one or LMDB holds.
//
// Thread safety: none while it is written; a write set handed to the Committer is read-only
// from then on, and reads from several threads are safe.

#ifndef HANDOFF_STORAGE_WRITE_SET_H_
#define HANDOFF_STORAGE_WRITE_SET_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "handoff/status.h"
#include "storage/lmdb.h"

namespace handoff::storage {

class WriteSet {
 public:
  // Keys and values point into the set's own arena: they live as long as the set.
  struct Entry {
    std::string_view value;
    bool erased = false;  // a tombstone: the key is deleted
  };
  using Map = std::map<std::string_view, Entry>;

  WriteSet();
  // Not movable: transactions and cursors hold pointers to it and into its memory.
  WriteSet(const WriteSet&) = delete;
  WriteSet& operator=(const WriteSet&) = delete;

  void Put(Table table, std::string_view key, std::string_view value);
  void Erase(Table table, std::string_view key);
  // The entry for `key` (a tombstone when deleted), or null when this set does not touch it.
  const Entry* Find(Table table, std::string_view key) const;
  // The table's entries (empty when untouched). The reference stays valid as long as the set.
  const Map& table(Table table) const { return tables_.at(table); }

  // Applies every entry to a write transaction of the LMDB environment; keys past a table's
  // last one are appended (MDB_APPEND).
  Status ApplyTo(Txn& txn) const;

  // True when nothing was written (no Put or Erase since construction or Clear).
  bool empty() const { return writes_ == 0; }
  // Bytes of the keys and values written, counting a key again each time it is rewritten: at
  // least what applying the set adds to the store's data.
  uint64_t bytes() const { return bytes_; }

  // Table numbers (LMDB dbis) a write set holds: 0 to kMaxTables - 1.
  static constexpr size_t kMaxTables = 64;

 private:
  // Copies `bytes` into the arena: one allocation per block of kBlockBytes rather than one
  // per key and value; a large value gets a block of its own.
  std::string_view Keep(std::string_view bytes);
  static constexpr size_t kBlockBytes = 64 * 1024;

  std::vector<Map> tables_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* free_ = nullptr;  // the unused end of the last block
  size_t free_bytes_ = 0;
  size_t writes_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_WRITE_SET_H_
