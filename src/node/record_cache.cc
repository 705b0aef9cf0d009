#include "node/record_cache.h"

namespace handoff::node {

const IntentRecord* RecordCache::Find(const IntentId& id) {
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.position);
  return &it->second.record;
}

void RecordCache::Put(const IntentRecord& record) { Put(IntentRecord(record)); }

void RecordCache::Put(IntentRecord&& record) {
  if (capacity_ == 0) return;
  auto it = map_.find(record.id);
  if (it != map_.end()) {
    it->second.record = std::move(record);
    lru_.splice(lru_.begin(), lru_, it->second.position);
    return;
  }
  const IntentId id = record.id;
  if (map_.size() >= capacity_) {
    // Full (as it stays once warm): the least recently used entry's node and list place take
    // the new record, moved once, with nothing allocated or freed.
    auto node = map_.extract(lru_.back());
    lru_.splice(lru_.begin(), lru_, std::prev(lru_.end()));
    lru_.front() = id;
    node.key() = id;
    node.mapped().record = std::move(record);
    node.mapped().position = lru_.begin();
    map_.insert(std::move(node));
    return;
  }
  lru_.push_front(id);
  map_.emplace(std::piecewise_construct, std::forward_as_tuple(id),
               std::forward_as_tuple(std::move(record), lru_.begin()));
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
