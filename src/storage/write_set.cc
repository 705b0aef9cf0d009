#include "storage/write_set.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <type_traits>

#include "base/varint.h"

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

uint64_t WriteSet::KeyHash(Table table, std::string_view key) {
  return std::hash<std::string_view>()(key) ^ (uint64_t{table} * 0x9e3779b97f4a7c15ULL);
}

void WriteSet::Mark(uint64_t hash) {
  filter_[(hash >> 6) % kFilterWords] |= uint64_t{1} << (hash & 63);
  filter_[(hash >> 38) % kFilterWords] |= uint64_t{1} << ((hash >> 32) & 63);
}

bool WriteSet::MayHold(uint64_t hash) const {
  return (filter_[(hash >> 6) % kFilterWords] >> (hash & 63) & 1) != 0 &&
         (filter_[(hash >> 38) % kFilterWords] >> ((hash >> 32) & 63) & 1) != 0;
}

WriteSet::Map::iterator WriteSet::Slot(Map& map, std::string_view key, Entry added) {
  // Most keys a turn writes are past the table's last one (new intents' ids are time-ordered,
  // audit and event sequence numbers grow): one comparison puts those in, not a search of a
  // dozen.
  if (map.empty() || std::prev(map.end())->first < key) {
    return map.emplace_hint(map.end(), Keep(key), added);
  }
  auto it = map.lower_bound(key);
  if (it->first != key) it = map.emplace_hint(it, Keep(key), added);
  return it;
}

void WriteSet::Put(Table table, std::string_view key, std::string_view value) {
  Set(table, key, value, false);
}

void WriteSet::PutNew(Table table, std::string_view key, std::string_view value) {
  Set(table, key, value, true);
}

void WriteSet::Set(Table table, std::string_view key, std::string_view value, bool absent_below) {
  Map& map = tables_[Check(table)];
  Mark(KeyHash(table, key));
  // Fresh only as a new entry: an existing one (a tombstone, say) may stand for a key below,
  // and one that is fresh stays so.
  auto it = Slot(map, key, Entry{{}, false, absent_below});
  it->second.value = Keep(value);
  it->second.erased = false;
  ++writes_;
  bytes_ += key.size() + value.size();
}

void WriteSet::Erase(Table table, std::string_view key) {
  Map& map = tables_[Check(table)];
  Mark(KeyHash(table, key));
  auto it = Slot(map, key, Entry{});
  ++writes_;
  if (it->second.fresh) {
    // Nothing below holds the key: without this set's entry it is simply absent. (The filter
    // keeps its bits; a lookup it lets through finds nothing.)
    map.erase(it);
    return;
  }
  it->second.value = {};
  it->second.erased = true;
  bytes_ += key.size();
}

const WriteSet::Entry* WriteSet::Find(Table table, std::string_view key, uint64_t hash) const {
  const Map& map = tables_[Check(table)];
  if (map.empty() || !MayHold(hash)) return nullptr;
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

namespace {

bool ReadU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 3; i >= 0; --i) *v = *v << 8 | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(4);
  return true;
}

// A length as a varint of at most 5 bytes that fits 32 bits.
bool ReadVarint32(std::string_view* in, uint32_t* v) {
  uint64_t n = 0;
  if (!GetVarint(in, &n, 5) || n > UINT32_MAX) return false;
  *v = static_cast<uint32_t>(n);
  return true;
}

// A length (fixed u32 in the form 'P'/'E' records, a varint in 'p'/'e'), then that many bytes.
bool ReadBytes(std::string_view* in, bool varint, std::string_view* bytes) {
  uint32_t n = 0;
  if (!(varint ? ReadVarint32(in, &n) : ReadU32(in, &n)) || in->size() < n) return false;
  *bytes = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

void WriteSet::Encode(std::string* out) const {
  // Reserved for the most it can take (5 varint bytes per length); each entry's op, table and
  // key length go in one append, its value's length in another.
  out->reserve(out->size() + bytes_ + 12 * writes_);
  char head[2 + kMaxVarintBytes];
  for (size_t t = 0; t < kMaxTables; ++t) {
    for (const auto& [key, entry] : tables_[t]) {
      head[0] = entry.erased ? 'e' : 'p';
      head[1] = static_cast<char>(t);
      out->append(head, 2 + PutVarint(head + 2, key.size()));
      out->append(key);
      if (!entry.erased) {
        out->append(head, PutVarint(head, entry.value.size()));
        out->append(entry.value);
      }
    }
  }
}

Status WriteSet::Decode(std::string_view bytes, WriteSet* out) {
  while (!bytes.empty()) {
    if (bytes.size() < 2) return Status::Corruption("write set record cut short");
    const char op = bytes[0];
    const auto table = static_cast<uint8_t>(bytes[1]);
    bytes.remove_prefix(2);
    const bool put = op == 'p' || op == 'P';
    const bool varint = op == 'p' || op == 'e';
    std::string_view key, value;
    if ((!put && op != 'E' && op != 'e') || table >= kMaxTables ||
        !ReadBytes(&bytes, varint, &key) || (put && !ReadBytes(&bytes, varint, &value))) {
      return Status::Corruption("malformed write set record");
    }
    if (put) {
      out->Put(table, key, value);
    } else {
      out->Erase(table, key);
    }
  }
  return Status::OK();
}

Status WriteSet::ApplyTo(Txn& txn) const {
  for (size_t t = 0; t < kMaxTables; ++t) {
    const Map& map = tables_[t];
    if (map.empty()) continue;
    const Table table = static_cast<Table>(t);
    // The entries go in key order through cursors, each write searching from where the last
    // one left off. Keys past the table's last one (new intents' ids and audit sequence
    // numbers grow, so most of a batch's keys are) go in with MDB_APPEND: no search after the
    // first, and full pages rather than the half-full ones a split in the middle leaves.
    HANDOFF_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, table));
    std::string last;
    if (cursor.Last()) last.assign(cursor.key());
    HANDOFF_RETURN_IF_ERROR(cursor.status());
    auto appending = last.empty() ? map.begin() : map.upper_bound(last);
    for (auto it = map.begin(); it != appending; ++it) {
      const auto& [key, entry] = *it;
      HANDOFF_RETURN_IF_ERROR(entry.erased ? cursor.Erase(key) : cursor.Put(key, entry.value));
    }
    if (appending == map.end()) continue;
    // A new cursor, so that the first append finds the table's end as the writes above left
    // it.
    HANDOFF_ASSIGN_OR_RETURN(Cursor appender, Cursor::Open(txn, table));
    for (auto it = appending; it != map.end(); ++it) {
      // Nothing to delete past the last key.
      if (!it->second.erased) HANDOFF_RETURN_IF_ERROR(appender.Append(it->first, it->second.value));
    }
  }
  return Status::OK();
}

}  // namespace handoff::storage
