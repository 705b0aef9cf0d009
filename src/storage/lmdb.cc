#include "storage/lmdb.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <system_error>
#include <vector>

#include "base/units.h"
#include "storage/write_set.h"

namespace handoff::storage {
namespace {

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// A missing key is an everyday answer, not an error: its message is short enough to be held
// without an allocation.
constexpr const char* kKeyNotFound = "key not found";

Status ReadOnly() { return Status::InvalidArgument("a write through a read-only view"); }

}  // namespace

Status CheckMapSize(uint64_t map_size) {
  // A 64-bit Linux process has 128 TiB of address space (47 bits); half of it is the most a
  // map may take, leaving the rest to the heap, stacks, libraries and ZeroMQ's buffers.
  constexpr uint64_t kMaxMap = uint64_t{64} << 40;
  // Under an address-space limit, room for everything else the daemon maps.
  constexpr uint64_t kOtherMappings = uint64_t{1} << 30;
  constexpr uint64_t kMinMap = uint64_t{1} << 20;
  if (map_size < kMinMap) {
    return Status::InvalidArgument("map_size: " + FormatByteSize(map_size) +
                                   " is below the minimum of 1MiB");
  }
  if (sizeof(void*) < 8 || map_size > kMaxMap) {
    return Status::InvalidArgument("map_size: " + FormatByteSize(map_size) +
                                   " is more than a process may map (at most 64TiB)");
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const uint64_t room = limit.rlim_cur > kOtherMappings ? limit.rlim_cur - kOtherMappings : 0;
    if (map_size > room) {
      return Status::InvalidArgument(
          "map_size: " + FormatByteSize(map_size) + " does not fit this process's address-space " +
          "limit (ulimit -v: " + FormatByteSize(limit.rlim_cur) + ", of which 1GiB is kept for " +
          "everything else); lower map_size to at most " + FormatByteSize(room) +
          " or raise the limit");
    }
  }
  return Status::OK();
}

Status MdbStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::OK();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      return Status::NotFound(msg);
    case MDB_MAP_FULL:
      return Status::ResourceExhausted(
          std::string(what) +
          ": the data file reached its map_size limit; raise [node] map_size or lower retention");
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
      return Status::ResourceExhausted(msg);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Status::Corruption(msg);
    case MDB_BAD_VALSIZE:
    case MDB_KEYEXIST:
      return Status::InvalidArgument(msg);
    default:
      return Status::IOError(msg);
  }
}

Result<std::unique_ptr<Env>> Env::Open(const std::string& dir, const EnvOptions& options) {
  // LMDB numbers named tables from 2 (0 is its freelist, 1 its main table); a write set holds
  // every number the environment can hand out.
  if (options.max_tables + 2 > WriteSet::kMaxTables) {
    return Status::InvalidArgument("at most " + std::to_string(WriteSet::kMaxTables - 2) +
                                   " tables");
  }
  HANDOFF_RETURN_IF_ERROR(CheckMapSize(options.map_size));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create data directory " + dir + ": " + ec.message());

  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "mdb_env_create");
  auto fail = [&](int code, std::string_view what) {
    mdb_env_close(env);
    return MdbStatus(code, what);
  };
  if ((rc = mdb_env_set_maxdbs(env, options.max_tables)) != MDB_SUCCESS) {
    return fail(rc, "mdb_env_set_maxdbs");
  }
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != MDB_SUCCESS) {
    return fail(rc, "mdb_env_set_mapsize");
  }
  // NOTLS: read transactions are not tied to threads (the client of this wrapper owns them).
  // NOMEMINIT: pages are fully written before they reach the disk anyway.
  unsigned flags = MDB_NOTLS | MDB_NOMEMINIT;
  flags |= options.sync ? MDB_NOMETASYNC : MDB_NOSYNC;
  if ((rc = mdb_env_open(env, dir.c_str(), flags, 0600)) != MDB_SUCCESS) {
    return fail(rc, "opening LMDB environment in " + dir);
  }
  // Clear stale reader slots left by a crashed process.
  int dead = 0;
  mdb_reader_check(env, &dead);
  return std::unique_ptr<Env>(new Env(env, dir, options));
}

Env::~Env() { mdb_env_close(env_); }

Status Env::Sync() {
  if (!options_.sync) return Status::OK();
  return MdbStatus(mdb_env_sync(env_, 1), "flushing the data file");
}

Result<uint64_t> Env::UsedBytes() const {
  MDB_envinfo info;
  MDB_stat stat;
  int rc = mdb_env_info(env_, &info);
  if (rc == MDB_SUCCESS) rc = mdb_env_stat(env_, &stat);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "mdb_env_info");
  return static_cast<uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    Abort();
    txn_ = other.txn_;
    write_ = other.write_;
    layered_ = other.layered_;
    top_ = other.top_;
    below_ = other.below_;
    below_count_ = other.below_count_;
    other.txn_ = nullptr;
  }
  return *this;
}

Result<Txn> Txn::BeginWrite(Env& env) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, 0, &txn);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "beginning a write transaction");
  return Txn(txn, true);
}

Result<Txn> Txn::BeginRead(Env& env) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &txn);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "beginning a read transaction");
  return Txn(txn, false);
}

Result<Txn> Txn::BeginLayered(Env& env, WriteSet* top, std::span<const WriteSet* const> below) {
  if (below.size() > kMaxBelow) {
    return Status::InvalidArgument("a layered transaction over " + std::to_string(below.size()) +
                                   " write sets; at most " + std::to_string(kMaxBelow));
  }
  HANDOFF_ASSIGN_OR_RETURN(Txn txn, BeginRead(env));
  txn.write_ = top != nullptr;
  txn.layered_ = true;
  txn.top_ = top;
  std::copy(below.begin(), below.end(), txn.below_.begin());
  txn.below_count_ = below.size();
  return txn;
}

Status Txn::Commit() {
  if (txn_ == nullptr) return Status::InvalidArgument("commit of a finished transaction");
  if (layered_) {
    return Status::InvalidArgument("a layered transaction is committed through its write sets");
  }
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;
  return MdbStatus(rc, "committing");
}

void Txn::Abort() {
  if (txn_ != nullptr) {
    mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
}

Result<Table> Txn::OpenTable(const char* name) {
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn_, name, write_ ? MDB_CREATE : 0, &dbi);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, std::string("opening table ") + name);
  return dbi;
}

Status Txn::Get(Table table, std::string_view key, std::string_view* value) const {
  if (layered_) {
    const uint64_t hash = WriteSet::KeyHash(table, key);  // once for every layer
    const WriteSet::Entry* entry = top_ != nullptr ? top_->Find(table, key, hash) : nullptr;
    for (size_t i = 0; entry == nullptr && i < below_count_; ++i) {
      if (below_[i] != nullptr) entry = below_[i]->Find(table, key, hash);
    }
    if (entry != nullptr) {
      if (entry->erased) return Status::NotFound(kKeyNotFound);
      *value = entry->value;
      return Status::OK();
    }
  }
  MDB_val k = Val(key);
  MDB_val v;
  int rc = mdb_get(txn_, table, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound(kKeyNotFound);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "get");
  *value = View(v);
  return Status::OK();
}

Status Txn::Put(Table table, std::string_view key, std::string_view value) {
  if (layered_) {
    if (top_ == nullptr) return ReadOnly();
    top_->Put(table, key, value);
    return Status::OK();
  }
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  return MdbStatus(mdb_put(txn_, table, &k, &v, 0), "put");
}

Status Txn::PutNew(Table table, std::string_view key, std::string_view value) {
  if (!layered_) return Put(table, key, value);
  if (top_ == nullptr) return ReadOnly();
  top_->PutNew(table, key, value);
  return Status::OK();
}

Status Txn::Append(Table table, std::string_view key, std::string_view value) {
  if (layered_) {
    if (top_ == nullptr) return ReadOnly();
    top_->Put(table, key, value);  // WriteSet::ApplyTo appends what it can
    return Status::OK();
  }
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  return MdbStatus(mdb_put(txn_, table, &k, &v, MDB_APPEND), "append");
}

Result<uint64_t> Txn::FreeBytes() const {
  MDB_stat stat;
  int rc = mdb_stat(txn_, 0, &stat);  // dbi 0: the freelist
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "mdb_stat(freelist)");
  MDB_cursor* cursor = nullptr;
  rc = mdb_cursor_open(txn_, 0, &cursor);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "opening a freelist cursor");
  uint64_t pages = 0;
  MDB_val key, value;
  // Each entry lists the pages one transaction freed: a count, then the page numbers.
  for (rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
    size_t count = 0;
    if (value.mv_size >= sizeof(count)) std::memcpy(&count, value.mv_data, sizeof(count));
    pages += count;
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) return MdbStatus(rc, "reading the freelist");
  return pages * stat.ms_psize;
}

Status Txn::Delete(Table table, std::string_view key) {
  if (layered_) {
    if (top_ == nullptr) return ReadOnly();
    top_->Erase(table, key);
    return Status::OK();
  }
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, table, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::OK();
  return MdbStatus(rc, "delete");
}

Result<uint64_t> Txn::Count(Table table) const {
  if (layered_) return Status::InvalidArgument("Count in a layered transaction");
  MDB_stat stat;
  int rc = mdb_stat(txn_, table, &stat);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "stat");
  return static_cast<uint64_t>(stat.ms_entries);
}

// The merge of a layered transaction's write sets (newest first) over an LMDB cursor, as in
// leveldb's merging iterator: every source sits at its first key on the far side of the
// current one in the direction of travel; the current key is the nearest of them, its value
// from the newest source that holds it; tombstones are stepped over.
struct Cursor::Merge {
  struct Layer {
    const WriteSet::Map* map;
    WriteSet::Map::const_iterator it;
    bool valid = false;
  };
  WriteSet* top = nullptr;
  Table table = 0;
  // Newest first: the top and the layers below it that touch the table. Held inline up to
  // kInlineLayers (a cursor is opened several times per request, and a loop that keeps up
  // has a few batches on their way into LMDB); more go to `spilled`.
  static constexpr size_t kInlineLayers = 14;
  std::array<Layer, kInlineLayers> inline_slots;
  std::vector<Layer> spilled;
  size_t count = 0;
  std::span<Layer> layers() {
    return {spilled.empty() ? inline_slots.data() : spilled.data(), count};
  }
  void Add(const WriteSet::Map* map) {
    const Layer layer{map, {}, false};
    if (count < kInlineLayers) {
      inline_slots[count] = layer;
    } else {
      if (spilled.empty()) spilled.assign(inline_slots.begin(), inline_slots.end());
      spilled.push_back(layer);
    }
    ++count;
  }
  // LMDB, the oldest source.
  bool base_valid = false;
  std::string_view base_key, base_value;
  bool forward = true;
  std::string current;  // the key the cursor is at (owned: DeleteCurrent changes the layers)
};

namespace {

// Positions one LMDB cursor; false at the end (or on error, which lands in *status).
bool BaseMove(MDB_cursor* cursor, MDB_cursor_op op, std::string_view seek, std::string_view* key,
              std::string_view* value, Status* status) {
  MDB_val k = Val(seek);
  MDB_val v{0, nullptr};
  int rc = mdb_cursor_get(cursor, &k, &v, op);
  if (rc != MDB_SUCCESS) {
    if (rc != MDB_NOTFOUND) *status = MdbStatus(rc, "cursor");
    return false;
  }
  *key = View(k);
  *value = View(v);
  return true;
}

}  // namespace

Cursor::Cursor(MDB_cursor* cursor) : cursor_(cursor) {}

Cursor::Cursor(Cursor&& other) noexcept
    : cursor_(other.cursor_),
      key_(other.key_),
      value_(other.value_),
      status_(std::move(other.status_)),
      merge_(std::move(other.merge_)) {
  other.cursor_ = nullptr;
}

Result<Cursor> Cursor::Open(const Txn& txn, Table table) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn.raw(), table, &cursor);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "opening a cursor");
  Cursor c(cursor);
  if (txn.layered_) {
    c.merge_ = std::make_unique<Merge>();
    c.merge_->top = txn.top_;
    c.merge_->table = table;
    // The top layer always takes part: DeleteCurrent writes its tombstones there.
    if (txn.top_ != nullptr) c.merge_->Add(&txn.top_->table(table));
    for (const WriteSet* below : std::span(txn.below_.data(), txn.below_count_)) {
      if (below != nullptr && !below->table(table).empty()) {
        c.merge_->Add(&below->table(table));
      }
    }
  }
  return c;
}

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

bool Cursor::Move(MDB_cursor_op op, std::string_view seek) {
  status_ = Status::OK();
  if (BaseMove(cursor_, op, seek, &key_, &value_, &status_)) return true;
  key_ = value_ = {};
  return false;
}

// Where MergeTo puts every source: at the first or last key, at the first key >=, > the given
// one, or at the last key <=, < it.
enum class Cursor::Place : int { kFirst, kLast, kAtOrAfter, kAfter, kAtOrBefore, kBefore };

bool Cursor::First() { return merge_ ? MergeTo(Place::kFirst, {}) : Move(MDB_FIRST); }
bool Cursor::Last() { return merge_ ? MergeTo(Place::kLast, {}) : Move(MDB_LAST); }

bool Cursor::Seek(std::string_view key) {
  return merge_ ? MergeTo(Place::kAtOrAfter, key) : Move(MDB_SET_RANGE, key);
}

bool Cursor::SeekLastAtOrBefore(std::string_view key) {
  if (merge_) return MergeTo(Place::kAtOrBefore, key);
  if (!Seek(key)) return status_.ok() && Last();
  if (key_ == key) return true;
  return Prev();
}

bool Cursor::Next() {
  if (!merge_) return Move(MDB_NEXT);
  if (key_.data() == nullptr) return false;
  if (!merge_->forward) return MergeTo(Place::kAfter, merge_->current);
  Step(true);
  return Settle();
}

bool Cursor::Prev() {
  if (!merge_) return Move(MDB_PREV);
  if (key_.data() == nullptr) return false;
  if (merge_->forward) return MergeTo(Place::kBefore, merge_->current);
  Step(false);
  return Settle();
}

bool Cursor::MergeTo(Place place, std::string_view key) {
  Merge& m = *merge_;
  status_ = Status::OK();
  m.forward = place == Place::kFirst || place == Place::kAtOrAfter || place == Place::kAfter;
  for (Merge::Layer& layer : m.layers()) {
    const WriteSet::Map& map = *layer.map;
    switch (place) {
      case Place::kFirst:
        layer.it = map.begin();
        break;
      case Place::kAtOrAfter:
        layer.it = map.lower_bound(key);
        break;
      case Place::kAfter:
        layer.it = map.upper_bound(key);
        break;
      case Place::kLast:
      case Place::kAtOrBefore:
      case Place::kBefore: {
        auto it = place == Place::kLast     ? map.end()
                  : place == Place::kBefore ? map.lower_bound(key)
                                            : map.upper_bound(key);
        layer.valid = it != map.begin();
        if (layer.valid) layer.it = std::prev(it);
        continue;
      }
    }
    layer.valid = layer.it != map.end();
  }
  std::string_view& k = m.base_key;
  std::string_view& v = m.base_value;
  switch (place) {
    case Place::kFirst:
      m.base_valid = BaseMove(cursor_, MDB_FIRST, {}, &k, &v, &status_);
      break;
    case Place::kLast:
      m.base_valid = BaseMove(cursor_, MDB_LAST, {}, &k, &v, &status_);
      break;
    case Place::kAtOrAfter:
    case Place::kAfter:
      m.base_valid = BaseMove(cursor_, MDB_SET_RANGE, key, &k, &v, &status_);
      if (m.base_valid && place == Place::kAfter && k == key) {
        m.base_valid = BaseMove(cursor_, MDB_NEXT, {}, &k, &v, &status_);
      }
      break;
    case Place::kAtOrBefore:
    case Place::kBefore:
      m.base_valid = BaseMove(cursor_, MDB_SET_RANGE, key, &k, &v, &status_);
      if (m.base_valid) {
        if (place == Place::kBefore || k != key) {
          m.base_valid = BaseMove(cursor_, MDB_PREV, {}, &k, &v, &status_);
        }
      } else if (status_.ok()) {
        m.base_valid = BaseMove(cursor_, MDB_LAST, {}, &k, &v, &status_);
      }
      break;
  }
  return Settle();
}

void Cursor::Step(bool forward) {
  Merge& m = *merge_;
  const std::string& at = m.current;
  for (Merge::Layer& layer : m.layers()) {
    if (!layer.valid || layer.it->first != at) continue;
    if (forward) {
      layer.valid = ++layer.it != layer.map->end();
    } else {
      layer.valid = layer.it != layer.map->begin();
      if (layer.valid) --layer.it;
    }
  }
  if (m.base_valid && m.base_key == at) {
    m.base_valid =
        BaseMove(cursor_, forward ? MDB_NEXT : MDB_PREV, {}, &m.base_key, &m.base_value, &status_);
  }
}

bool Cursor::Settle() {
  Merge& m = *merge_;
  while (status_.ok()) {
    // The nearest key in the direction of travel; on a tie the newest source wins (LMDB last).
    const WriteSet::Entry* entry = nullptr;
    std::string_view best;
    bool found = false;
    for (const Merge::Layer& layer : m.layers()) {
      if (!layer.valid) continue;
      std::string_view key = layer.it->first;
      if (!found || (m.forward ? key < best : key > best)) {
        best = key;
        entry = &layer.it->second;
        found = true;
      }
    }
    std::string_view value;
    if (m.base_valid && (!found || (m.forward ? m.base_key < best : m.base_key > best))) {
      best = m.base_key;
      value = m.base_value;
      entry = nullptr;
      found = true;
    }
    if (!found) break;
    m.current.assign(best);
    if (entry != nullptr && entry->erased) {
      Step(m.forward);
      continue;
    }
    key_ = m.current;
    value_ = entry != nullptr ? std::string_view(entry->value) : value;
    return true;
  }
  key_ = value_ = {};
  return false;
}

Status Cursor::DeleteCurrent() {
  if (merge_) {
    if (key_.data() == nullptr) return Status::InvalidArgument("cursor delete: no current entry");
    if (merge_->top == nullptr) return ReadOnly();
    merge_->top->Erase(merge_->table, merge_->current);
    key_ = value_ = {};
    return Status::OK();
  }
  int rc = mdb_cursor_del(cursor_, 0);
  key_ = value_ = {};
  return MdbStatus(rc, "cursor delete");
}

Status Cursor::Put(std::string_view key, std::string_view value) {
  if (merge_) return Status::InvalidArgument("cursor put: a layered transaction");
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  key_ = value_ = {};
  return MdbStatus(mdb_cursor_put(cursor_, &k, &v, 0), "put");
}

Status Cursor::Erase(std::string_view key) {
  if (merge_) return Status::InvalidArgument("cursor erase: a layered transaction");
  MDB_val k = Val(key);
  MDB_val v;
  key_ = value_ = {};
  int rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET);
  if (rc == MDB_NOTFOUND) return Status::OK();
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "erase");
  return MdbStatus(mdb_cursor_del(cursor_, 0), "erase");
}

Status Cursor::Append(std::string_view key, std::string_view value) {
  if (merge_) return Status::InvalidArgument("cursor append: a layered transaction");
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  key_ = value_ = {};
  return MdbStatus(mdb_cursor_put(cursor_, &k, &v, MDB_APPEND), "append");
}

}  // namespace handoff::storage
