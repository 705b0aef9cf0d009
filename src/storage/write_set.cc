#include "storage/write_set.h"

namespace handoff::storage {

WriteSet::WriteSet() : tables_(kMaxTables) {}

void WriteSet::Put(Table table, std::string_view key, std::string_view value, bool append) {
  Map& map = tables_.at(table);
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace_hint(it, std::string(key), Entry{});
  it->second.value.assign(value);
  it->second.erased = false;
  it->second.append = append;
  ++writes_;
  bytes_ += key.size() + value.size();
}

void WriteSet::Erase(Table table, std::string_view key) {
  Map& map = tables_.at(table);
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace_hint(it, std::string(key), Entry{});
  it->second.value.clear();
  it->second.erased = true;
  it->second.append = false;
  ++writes_;
  bytes_ += key.size();
}

const WriteSet::Entry* WriteSet::Find(Table table, std::string_view key) const {
  const Map& map = tables_.at(table);
  if (map.empty()) return nullptr;
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

void WriteSet::Absorb(WriteSet& newer) {
  for (size_t t = 0; t < tables_.size(); ++t) {
    Map& mine = tables_[t];
    Map& theirs = newer.tables_[t];
    if (theirs.empty()) continue;
    if (mine.empty()) {
      mine.swap(theirs);
      continue;
    }
    theirs.merge(mine);  // moves over our keys that `newer` lacks; theirs win on conflicts
    mine.swap(theirs);
    theirs.clear();      // our replaced entries
  }
  writes_ += newer.writes_;
  bytes_ += newer.bytes_;
  newer.writes_ = 0;
  newer.bytes_ = 0;
}

Status WriteSet::ApplyTo(Txn& txn) const {
  for (size_t t = 0; t < tables_.size(); ++t) {
    const Table table = static_cast<Table>(t);
    for (const auto& [key, entry] : tables_[t]) {
      if (entry.erased) {
        HANDOFF_RETURN_IF_ERROR(txn.Delete(table, key));
      } else if (entry.append) {
        Status s = txn.Append(table, key, entry.value);
        // Not the greatest key after all (a lower layer or LMDB holds a greater one).
        if (s.IsInvalidArgument()) s = txn.Put(table, key, entry.value);
        HANDOFF_RETURN_IF_ERROR(s);
      } else {
        HANDOFF_RETURN_IF_ERROR(txn.Put(table, key, entry.value));
      }
    }
  }
  return Status::OK();
}

void WriteSet::Clear() {
  for (Map& map : tables_) map.clear();
  writes_ = 0;
  bytes_ = 0;
}

}  // namespace handoff::storage
