// RecordCache: decoded intent records, most recently used first, at most `capacity` of them.
//
// The hot path touches each intent several times within milliseconds (send, deliver, complete,
// wait); decoding its record from LMDB each time cost more than everything else the daemon does
// for it. The cache holds committed state only: the Engine stages a turn's records apart and
// moves them in once the turn commits, so nothing here can be undone by a failed commit.
//
// Thread safety: none; the loop thread owns it.

#ifndef HANDOFF_NODE_RECORD_CACHE_H_
#define HANDOFF_NODE_RECORD_CACHE_H_

#include <cstddef>
#include <list>
#include <unordered_map>
#include <utility>

#include "base/intent_id.h"
#include "base/records.h"

namespace handoff::node {

class RecordCache {
 public:
  explicit RecordCache(size_t capacity) : capacity_(capacity) {}

  // The cached record of `id`, or nullptr; a hit becomes the most recently used. The pointer
  // is valid until the next Put, Erase or Clear.
  const IntentRecord* Find(const IntentId& id);
  // Inserts or replaces; evicts the least recently used record beyond capacity.
  void Put(const IntentRecord& record);
  void Put(IntentRecord&& record);
  void Erase(const IntentId& id);
  void Clear();

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    Entry(IntentRecord&& r, std::list<IntentId>::iterator p)
        : record(std::move(r)), position(p) {}
    IntentRecord record;
    std::list<IntentId>::iterator position;  // in lru_
  };

  size_t capacity_;
  std::unordered_map<IntentId, Entry, IntentIdHash> map_;
  std::list<IntentId> lru_;  // most recently used first
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_RECORD_CACHE_H_
