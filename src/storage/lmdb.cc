#include "storage/lmdb.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace handoff::storage {
namespace {

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

}  // namespace

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
  if (!options.sync) flags |= MDB_NOSYNC;
  if ((rc = mdb_env_open(env, dir.c_str(), flags, 0600)) != MDB_SUCCESS) {
    return fail(rc, "opening LMDB environment in " + dir);
  }
  // Clear stale reader slots left by a crashed process.
  int dead = 0;
  mdb_reader_check(env, &dead);
  return std::unique_ptr<Env>(new Env(env, dir, options));
}

Env::~Env() { mdb_env_close(env_); }

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

Status Txn::Commit() {
  if (txn_ == nullptr) return Status::InvalidArgument("commit of a finished transaction");
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
  MDB_val k = Val(key);
  MDB_val v;
  int rc = mdb_get(txn_, table, &k, &v);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "get");
  *value = View(v);
  return Status::OK();
}

Status Txn::Put(Table table, std::string_view key, std::string_view value) {
  MDB_val k = Val(key);
  MDB_val v = Val(value);
  return MdbStatus(mdb_put(txn_, table, &k, &v, 0), "put");
}

Status Txn::Append(Table table, std::string_view key, std::string_view value) {
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
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, table, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::OK();
  return MdbStatus(rc, "delete");
}

Result<uint64_t> Txn::Count(Table table) const {
  MDB_stat stat;
  int rc = mdb_stat(txn_, table, &stat);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "stat");
  return static_cast<uint64_t>(stat.ms_entries);
}

Result<Cursor> Cursor::Open(const Txn& txn, Table table) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn.raw(), table, &cursor);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "opening a cursor");
  return Cursor(cursor);
}

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

bool Cursor::Move(MDB_cursor_op op, std::string_view seek) {
  MDB_val k = Val(seek);
  MDB_val v{0, nullptr};
  int rc = mdb_cursor_get(cursor_, &k, &v, op);
  if (rc != MDB_SUCCESS) {
    status_ = rc == MDB_NOTFOUND ? Status::OK() : MdbStatus(rc, "cursor");
    key_ = value_ = {};
    return false;
  }
  key_ = View(k);
  value_ = View(v);
  return true;
}

bool Cursor::Seek(std::string_view key) { return Move(MDB_SET_RANGE, key); }

bool Cursor::SeekLastAtOrBefore(std::string_view key) {
  if (!Seek(key)) return status_.ok() && Last();
  if (key_ == key) return true;
  return Prev();
}

Status Cursor::DeleteCurrent() {
  int rc = mdb_cursor_del(cursor_, 0);
  key_ = value_ = {};
  return MdbStatus(rc, "cursor delete");
}

}  // namespace handoff::storage
