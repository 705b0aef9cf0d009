#include "node/record_cache.h"

#include <algorithm>
#include <limits>

namespace handoff::node {

RecordCache::RecordCache(size_t capacity)
    : capacity_(std::min<size_t>(capacity, std::numeric_limits<uint32_t>::max() / 4)) {}

size_t RecordCache::Probe(const IntentId& id, uint32_t hash) const {
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    // Never endless: at most half the slots are in use.
    if (s.entry == 0 || (s.hash == hash && entries_[s.entry - 1].id == id)) return i;
  }
}

const IntentRecord* RecordCache::Find(const IntentId& id) {
  if (size_ == 0) return nullptr;
  const Slot& s = slots_[Probe(id, Hash(id))];
  if (s.entry == 0) return nullptr;
  used_[s.entry - 1] = 1;
  return &entries_[s.entry - 1];
}

void RecordCache::Put(const IntentRecord& record) { Put(IntentRecord(record)); }

void RecordCache::Put(IntentRecord&& record) {
  if (capacity_ == 0) return;
  if (slots_.empty()) {
    size_t n = 2;
    while (n < 2 * capacity_) n *= 2;
    slots_.assign(n, Slot());
    mask_ = n - 1;
    entries_.reserve(capacity_);
    used_.reserve(capacity_);
  }
  const uint32_t hash = Hash(record.id);
  size_t at = Probe(record.id, hash);
  if (slots_[at].entry != 0) {
    entries_[slots_[at].entry - 1] = std::move(record);
    used_[slots_[at].entry - 1] = 1;
    return;
  }
  const uint32_t entry = TakeEntry();
  // Evicting may have moved slots: probe again for the place.
  at = Probe(record.id, hash);
  entries_[entry] = std::move(record);
  used_[entry] = 0;  // a new record earns its second chance by being used again
  slots_[at] = {entry + 1, hash};
  ++size_;
}

uint32_t RecordCache::TakeEntry() {
  if (!free_.empty()) {
    const uint32_t entry = free_.back();
    free_.pop_back();
    return entry;
  }
  if (entries_.size() < capacity_) {
    entries_.emplace_back();
    used_.push_back(0);
    return static_cast<uint32_t>(entries_.size() - 1);
  }
  // Full, every entry in the index: the first the hand finds unused since it last passed.
  // Each entry it passes loses its bit, so one turn round the array finds one.
  for (;;) {
    const size_t at = hand_;
    hand_ = hand_ + 1 == entries_.size() ? 0 : hand_ + 1;
    if (used_[at] != 0) {
      used_[at] = 0;
      continue;
    }
    const IntentId& id = entries_[at].id;
    Unlink(Probe(id, Hash(id)));
    --size_;
    return static_cast<uint32_t>(at);
  }
}

void RecordCache::Unlink(size_t at) {
  // Backward-shift deletion: a later slot of the run moves into the hole unless its home lies
  // cyclically within (hole, slot], where it must stay to be found.
  size_t hole = at;
  for (size_t i = (at + 1) & mask_; slots_[i].entry != 0; i = (i + 1) & mask_) {
    const size_t home = slots_[i].hash & mask_;
    const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
    if (stays) continue;
    slots_[hole] = slots_[i];
    hole = i;
  }
  slots_[hole] = Slot();
}

void RecordCache::Erase(const IntentId& id) {
  if (size_ == 0) return;
  const size_t at = Probe(id, Hash(id));
  if (slots_[at].entry == 0) return;
  const uint32_t entry = slots_[at].entry - 1;
  Unlink(at);
  entries_[entry] = IntentRecord();
  used_[entry] = 0;
  free_.push_back(entry);
  --size_;
}

void RecordCache::Clear() {
  entries_.clear();
  used_.clear();
  free_.clear();
  if (!slots_.empty()) slots_.assign(slots_.size(), Slot());
  size_ = 0;
  hand_ = 0;
}

}  // namespace handoff::node
