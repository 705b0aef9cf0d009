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

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <string_view>

#include "handoff/status.h"
#include "storage/lmdb.h"

namespace handoff::storage {

class WriteSet {
 public:
  // Keys and values point into the set's own arena: they live as long as the set.
  struct Entry {
    std::string_view value;
    bool erased = false;  // a tombstone: the key is deleted
    bool fresh = false;   // put by PutNew where this set had no entry: absent below
  };
  // The maps' nodes come from the arena too.
  using Map = std::pmr::map<std::string_view, Entry>;

  WriteSet();
  // Frees the arena in a few calls; the maps are not destroyed node by node (below).
  ~WriteSet() = default;
  // Not movable: transactions and cursors hold pointers to it and into its memory.
  WriteSet(const WriteSet&) = delete;
  WriteSet& operator=(const WriteSet&) = delete;

  void Put(Table table, std::string_view key, std::string_view value);
  // Put of a key the caller knows is absent from what lies below this set (LMDB with the sets
  // under it, as a layered transaction reads them): a queue entry for an intent entering
  // SUBMITTED. Erased again in this set, it goes without a trace, where a Put's key would
  // leave a tombstone for the log and LMDB to carry and for merged cursors to step over.
  // Where this set already has an entry for the key (a tombstone, say), a Put.
  void PutNew(Table table, std::string_view key, std::string_view value);
  // Removes the key: a tombstone, or, for a key PutNew put in this set, its entry, which
  // invalidates iterators to it (a layered Cursor's DeleteCurrent leaves it unpositioned).
  void Erase(Table table, std::string_view key);
  // The entry for `key` (a tombstone when deleted), or null when this set does not touch it.
  const Entry* Find(Table table, std::string_view key) const {
    return Find(table, key, KeyHash(table, key));
  }
  // The same, with the key's KeyHash computed once by a caller that looks through several sets.
  const Entry* Find(Table table, std::string_view key, uint64_t hash) const;
  static uint64_t KeyHash(Table table, std::string_view key);
  // The table's entries (empty when untouched). The reference stays valid as long as the set.
  const Map& table(Table table) const { return tables_[Check(table)]; }

  // Applies every entry to a plain (not layered) write transaction of the LMDB environment;
  // keys past a table's last one are appended (MDB_APPEND).
  Status ApplyTo(Txn& txn) const;

  // The set as bytes (the write-ahead log's record payload): each entry in table and key
  // order, as op (1 byte: 'p' put, 'e' erase), table (1 byte), key length (LEB128 varint),
  // key, and for a put the value's length (varint) and the value. Appends to `out`.
  void Encode(std::string* out) const;
  // Reads Encode's bytes into an empty set; also the form of earlier releases, whose ops are
  // 'P' and 'E' with lengths as u32 little-endian (a log written before an upgrade is replayed
  // after it). Corruption when they do not parse.
  static Status Decode(std::string_view bytes, WriteSet* out);

  // True when nothing was written (no Put, PutNew or Erase since construction).
  bool empty() const { return writes_ == 0; }
  // Bytes of the keys and values written, counting a key again each time it is rewritten: at
  // least what applying the set adds to the store's data.
  uint64_t bytes() const { return bytes_; }

  // Table numbers (LMDB dbis) a write set holds: 0 to kMaxTables - 1.
  static constexpr size_t kMaxTables = 64;

 private:
  // Put and PutNew: the entry for `key` set to `value`, marked fresh when `absent_below` and
  // this set had none.
  void Set(Table table, std::string_view key, std::string_view value, bool absent_below);
  // Copies `bytes` into the arena.
  std::string_view Keep(std::string_view bytes);
  // The entry for `key` in `map`, added as `added` when missing.
  Map::iterator Slot(Map& map, std::string_view key, Entry added);
  // A Bloom filter over the keys written, two bits per key: most lookups through a stack of
  // layers are for keys that all but one layer (or all of them) do not touch, and the filter
  // answers those without a search of the map (a dozen key comparisons).
  static constexpr size_t kFilterWords = 1024;  // 64 Kbit: ~0.1% false hits at 1,000 keys
  void Mark(uint64_t hash);
  bool MayHold(uint64_t hash) const;
  // `table`, or aborts: a table number past kMaxTables is a programming error.
  static Table Check(Table table);

  // Everything a set holds (keys, values, the maps' nodes and the maps themselves) is carved
  // from one arena, a block at a time, and given back in one go when the set is destroyed: a
  // busy batch holds ~15 entries per round trip, and a node allocation and a free each, plus
  // a walk over every node to destroy the maps, cost the loop as much as the inserts did.
  // The maps live in the arena and are never destroyed: their nodes hold only string_views
  // and flags (trivially destructible) and their memory goes with the arena's.
  std::pmr::monotonic_buffer_resource arena_{kFirstBlockBytes};
  static constexpr size_t kFirstBlockBytes = 64 * 1024;
  Map* tables_;  // kMaxTables maps, in the arena
  std::array<uint64_t, kFilterWords> filter_{};
  size_t writes_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_WRITE_SET_H_
