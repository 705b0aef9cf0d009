// RecordCache: decoded intent records, at most `capacity` of them, those used recently kept.
//
// The hot path touches each intent several times within milliseconds (send, deliver, complete,
// wait); decoding its record from LMDB each time cost more than everything else the daemon does
// for it. The cache holds committed state only: the Engine stages a turn's records apart and
// moves them in once the turn commits, so nothing here can be undone by a failed commit.
//
// Laid out for the processor's caches, because at a few thousand round trips per second the
// cache is bigger than they are and each lookup is a miss: an open-addressing index (linear
// probing, at most half full) of 8-byte slots holding the entry's number and its hash, over
// one array of entries. A lookup reads one slot and then the entry it wants (std::
// unordered_map read a bucket, the node before, then the node). Eviction is CLOCK, an
// approximation of least-recently-used: a hit sets the entry's bit, and the hand, looking for
// room, gives an entry with its bit set another round (clearing it) and takes the first without.
// A hit so changes only the entry itself, where an LRU list relinked its neighbours too.
//
// Thread safety: none; the loop thread owns it.

#ifndef HANDOFF_NODE_RECORD_CACHE_H_
#define HANDOFF_NODE_RECORD_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/intent_id.h"
#include "base/records.h"

namespace handoff::node {

class RecordCache {
 public:
  // Memory is taken as records come: the index (16 bytes a record of capacity) with the first,
  // the entries' room reserved at once but touched one entry at a time.
  explicit RecordCache(size_t capacity);

  // The cached record of `id`, or nullptr; a hit counts as a use. The pointer is valid until
  // the next Put, Erase or Clear.
  const IntentRecord* Find(const IntentId& id);
  // Inserts or replaces (a use); when full, evicts a record not used since the hand last
  // passed it.
  void Put(const IntentRecord& record);
  void Put(IntentRecord&& record);
  void Erase(const IntentId& id);
  void Clear();

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

 private:
  // An index slot: the entry's number plus one (0: empty) and the low half of its id's hash
  // (which also gives its home slot, so moving slots never reads an entry).
  struct Slot {
    uint32_t entry = 0;
    uint32_t hash = 0;
  };

  static uint32_t Hash(const IntentId& id) { return static_cast<uint32_t>(IntentIdHash()(id)); }
  // The slot holding `id`, or the empty slot where its probe ended. Requires an index.
  size_t Probe(const IntentId& id, uint32_t hash) const;
  // Empties slot `at`, moving later slots of its run back so every probe still finds them.
  void Unlink(size_t at);
  // An entry for a new record: a free one, a new one while below capacity, or one evicted.
  uint32_t TakeEntry();

  size_t capacity_;
  size_t size_ = 0;
  size_t mask_ = 0;          // slots_.size() - 1
  std::vector<Slot> slots_;  // a power of two, at least twice the capacity; empty until used
  std::vector<IntentRecord> entries_;
  // CLOCK's bits, one per entry (used since the hand last passed), apart from the entries so
  // that the hand reads a few cache lines, not an entry each.
  std::vector<uint8_t> used_;
  std::vector<uint32_t> free_;  // entries erased, to be used again
  size_t hand_ = 0;             // CLOCK's hand, over entries_
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_RECORD_CACHE_H_
