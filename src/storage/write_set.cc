#include "storage/write_set.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace handoff::storage {

// The maps are never destroyed (write_set.h): nothing in them may need a destructor.
static_assert(std::is_trivially_destructible_v<WriteSet::Entry> &&
              std::is_trivially_destructible_v<std::string_view>);

WriteSet::WriteSet() {
  void* maps = arena_.allocate(sizeof(Map) * kMaxTables, alignof(Map));
  tables_ = static_cast<Map*>(maps);
  for (size_t t = 0; t < kMaxTables; ++t) new (&tables_[t]) Map(&arena_);
}

Table WriteSet::Check(Table table) {
  if (table >= kMaxTables) {
    std::fprintf(stderr, "handoff: write set table %u out of range\n", table);
    std::abort();
  }
  return table;
}

std::string_view WriteSet::Keep(std::string_view bytes) {
  if (bytes.empty()) return {};
  char* kept = static_cast<char*>(arena_.allocate(bytes.size(), 1));
  std::memcpy(kept, bytes.data(), bytes.size());
  return {kept, bytes.size()};
}

void WriteSet::Put(Table table, std::string_view key, std::string_view value) {
  Map& map = tables_[Check(table)];
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) it = map.emplace_hint(it, Keep(key), Entry{});
  it->second.value = Keep(value);
  it->second.erased = false;
  ++writes_;
  bytes_ += key.size() + value.size();
}

void WriteSet::Erase(Table table, std::string_view key) {
  Map& map = tables_[Check(table)];
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) it = map.emplace_hint(it, Keep(key), Entry{});
  it->second.value = {};
  it->second.erased = true;
  ++writes_;
  bytes_ += key.size();
}

const WriteSet::Entry* WriteSet::Find(Table table, std::string_view key) const {
  const Map& map = tables_[Check(table)];
  if (map.empty()) return nullptr;
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

Status WriteSet::ApplyTo(Txn& txn) const {
  for (size_t t = 0; t < kMaxTables; ++t) {
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
