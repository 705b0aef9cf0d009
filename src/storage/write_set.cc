#include "storage/write_set.h"

#include <cstring>

namespace handoff::storage {

WriteSet::WriteSet() : tables_(kMaxTables) {}

std::string_view WriteSet::Keep(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (bytes.size() > free_bytes_) {
    if (bytes.size() > kBlockBytes / 4) {
      // Its own block, inserted before the current one so that block's free end stays usable.
      std::unique_ptr<char[]> block(new char[bytes.size()]);  // not zeroed: written at once
      std::memcpy(block.get(), bytes.data(), bytes.size());
      std::string_view kept(block.get(), bytes.size());
      blocks_.insert(blocks_.empty() ? blocks_.end() : std::prev(blocks_.end()), std::move(block));
      return kept;
    }
    blocks_.emplace_back(new char[kBlockBytes]);  // not zeroed: filled as it is used
    free_ = blocks_.back().get();
    free_bytes_ = kBlockBytes;
  }
  std::memcpy(free_, bytes.data(), bytes.size());
  std::string_view kept(free_, bytes.size());
  free_ += bytes.size();
  free_bytes_ -= bytes.size();
  return kept;
}

void WriteSet::Put(Table table, std::string_view key, std::string_view value, bool append) {
  Map& map = tables_.at(table);
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) it = map.emplace_hint(it, Keep(key), Entry{});
  it->second.value = Keep(value);
  it->second.erased = false;
  it->second.append = append;
  ++writes_;
  bytes_ += key.size() + value.size();
}

void WriteSet::Erase(Table table, std::string_view key) {
  Map& map = tables_.at(table);
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) it = map.emplace_hint(it, Keep(key), Entry{});
  it->second.value = {};
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
  blocks_.clear();
  free_ = nullptr;
  free_bytes_ = 0;
  writes_ = 0;
  bytes_ = 0;
}

}  // namespace handoff::storage
