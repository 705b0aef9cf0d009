#include "node/record_cache.h"

namespace handoff::node {

const IntentRecord* RecordCache::Find(const IntentId& id) {
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.position);
  return &it->second.record;
}

void RecordCache::Put(IntentRecord record) {
  if (capacity_ == 0) return;
  auto it = map_.find(record.id);
  if (it != map_.end()) {
    it->second.record = std::move(record);
    lru_.splice(lru_.begin(), lru_, it->second.position);
    return;
  }
  if (map_.size() >= capacity_) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(record.id);
  const IntentId id = record.id;
  map_.emplace(id, Entry{std::move(record), lru_.begin()});
}

void RecordCache::Erase(const IntentId& id) {
  auto it = map_.find(id);
  if (it == map_.end()) return;
  lru_.erase(it->second.position);
  map_.erase(it);
}

void RecordCache::Clear() {
  map_.clear();
  lru_.clear();
}

}  // namespace handoff::node
