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

void WriteSet::Put(Table table, std::string_view key, std::string_view value) {
  Map& map = tables_.at(table);
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) it = map.emplace_hint(it, Keep(key), Entry{});
  it->second.value = Keep(value);
  it->second.erased = false;
  ++writes_;
  bytes_ += key.size() + value.size();
}

void WriteSet::Erase(Table table, std::string_view key) {
  Map& map = tables_.at(table);
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) it = map.emplace_hint(it, Keep(key), Entry{});
  it->second.value = {};
  it->second.erased = true;
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
    const Map& map = tables_[t];
    if (map.empty()) continue;
    const Table table = static_cast<Table>(t);
    // Keys past the table's last one (new intents' ids are time-ordered, so most of a batch's
    // keys are) go in with MDB_APPEND, in order: no search, and full pages rather than the
    // half-full ones a split in the middle leaves behind.
    std::string last;
    {
      HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, table));
      if (cursor.Last()) last.assign(cursor.key());
      HANDOFF_RETURN_IF_ERROR(cursor.status());
    }
    auto appending = map.upper_bound(last);
    if (last.empty()) appending = map.begin();
    for (auto it = map.begin(); it != appending; ++it) {
      const auto& [key, entry] = *it;
      HANDOFF_RETURN_IF_ERROR(entry.erased ? txn.Delete(table, key)
                                           : txn.Put(table, key, entry.value));
    }
    for (auto it = appending; it != map.end(); ++it) {
      // Nothing to delete past the last key.
      if (!it->second.erased) HANDOFF_RETURN_IF_ERROR(txn.Append(table, it->first, it->second.value));
    }
  }
  return Status::OK();
}

}  // namespace handoff::storage
