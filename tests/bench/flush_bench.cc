// handoff-flush-bench: what one durable commit costs on this disk, in the ways a commit could
// be made durable. It measures the storage alone (no daemon), so that a change of commit
// design can be judged before it is built.
//
//   handoff-flush-bench [--dir DIR] [--bytes 2700] [--commits 300]
//
// For each way it prints the median and 90th percentile of one commit of about --bytes bytes
// (records of 2,700 bytes, about one round trip's writes, appended to one table):
//
//   log fdatasync       pwrite of the bytes into a preallocated file, then fdatasync: the cost
//                       of a write-ahead log, one flush per commit (what handoffd does now)
//   log O_DIRECT|O_DSYNC  the same file opened with O_DIRECT | O_DSYNC and written alone: no
//                       page cache and no separate flush call, the disk's own write latency
//   lmdb sync           an LMDB commit with full sync (handoffd's commit before the log): data
//                       pages, fdatasync, then the meta page written with O_DSYNC (two flushes)
//   lmdb nometasync     the same without the meta page's flush (not durable on its own: the
//                       last commit survives power loss only once the next one has synced)
//   nometasync + log    nometasync with a log record written and fdatasync'd on a second
//                       thread at the same time: durable, and one flush per file
//
// Figures, not assertions; docs/performance.md says what they showed.

#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kRecordBytes = 2700;
constexpr size_t kLogBytes = 64 << 20;

struct Figures {
  double p50_us = 0, p90_us = 0;
};

Figures Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 9 / 10]};
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "handoff-flush-bench: %s\n", what.c_str());
  std::exit(1);
}

// A file of kLogBytes written with zeros and synced, so that later writes into it change no
// file size and allocate no blocks: fdatasync then flushes the data alone.
class Log {
 public:
  // direct: write with O_DIRECT | O_DSYNC (each write reaches the disk itself, with no
  // page cache and no separate flush call).
  explicit Log(const std::string& path, bool direct = false) : direct_(direct) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd_ < 0) Fail("cannot create " + path);
    const std::string zeros(1 << 20, '\0');
    for (size_t done = 0; done < kLogBytes; done += zeros.size()) {
      if (::write(fd_, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) {
        Fail("cannot preallocate " + path);
      }
    }
    if (::fdatasync(fd_) != 0) Fail("fdatasync");
    if (direct_) {
      ::close(fd_);
      fd_ = ::open(path.c_str(), O_RDWR | O_DIRECT | O_DSYNC);
      if (fd_ < 0) Fail("cannot open " + path + " with O_DIRECT | O_DSYNC");
    }
  }
  ~Log() { ::close(fd_); }

  void Append(std::string_view record) {
    if (offset_ + record.size() > kLogBytes) offset_ = 0;
    if (::pwrite(fd_, record.data(), record.size(), static_cast<off_t>(offset_)) !=
        static_cast<ssize_t>(record.size())) {
      Fail("pwrite");
    }
    offset_ += (record.size() + 4095) / 4096 * 4096;
    if (!direct_ && ::fdatasync(fd_) != 0) Fail("fdatasync");
  }

 private:
  bool direct_ = false;
  int fd_ = -1;
  size_t offset_ = 0;
};

class Lmdb {
 public:
  Lmdb(const std::string& dir, unsigned flags) {
    std::filesystem::create_directories(dir);
    int rc = mdb_env_create(&env_);
    if (rc == 0) rc = mdb_env_set_mapsize(env_, size_t{4} << 30);
    if (rc == 0) rc = mdb_env_open(env_, dir.c_str(), MDB_NOTLS | flags, 0600);
    MDB_txn* txn = nullptr;
    if (rc == 0) rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, nullptr, 0, &dbi_);
    if (rc == 0) rc = mdb_txn_commit(txn);
    if (rc != 0) Fail(std::string("lmdb: ") + mdb_strerror(rc));
  }
  ~Lmdb() { mdb_env_close(env_); }

  MDB_txn* Begin(size_t bytes) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    const std::string value(kRecordBytes, 'v');
    for (size_t done = 0; rc == 0 && done < bytes; done += kRecordBytes) {
      const uint64_t key = __builtin_bswap64(++last_key_);  // big-endian: keys in order
      MDB_val k{sizeof(key), const_cast<uint64_t*>(&key)};
      MDB_val v{value.size(), const_cast<char*>(value.data())};
      rc = mdb_put(txn, dbi_, &k, &v, MDB_APPEND);
    }
    if (rc != 0) Fail(std::string("lmdb put: ") + mdb_strerror(rc));
    return txn;
  }
  static void Commit(MDB_txn* txn) {
    if (int rc = mdb_txn_commit(txn); rc != 0)
      Fail(std::string("lmdb commit: ") + mdb_strerror(rc));
  }

 private:
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  uint64_t last_key_ = 0;
};

template <typename Fn>
Figures Time(int commits, Fn&& commit) {
  std::vector<double> us;
  for (int i = 0; i < commits; ++i) {
    const Clock::time_point start = Clock::now();
    commit();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return Summarize(std::move(us));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  size_t bytes = kRecordBytes;
  int commits = 300;
  CLI::App app{"handoff-flush-bench: the cost of one durable commit on this disk"};
  app.add_option("--dir", dir, "where to write (default: a new directory under the temp dir)");
  app.add_option("--bytes", bytes, "bytes per commit (default 2700: one round trip's writes)")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20));
  app.add_option("--commits", commits, "commits per way (default 300)")
      ->check(CLI::Range(10, 100000));
  CLI11_PARSE(app, argc, argv);

  const bool own_dir = dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "handoff-flush.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) Fail("cannot create a temporary directory");
    dir = tmpl;
  }
  const std::string padded((bytes + 4095) / 4096 * 4096, 'r');
  // O_DIRECT needs a buffer aligned to the block size.
  void* aligned = std::aligned_alloc(4096, padded.size());
  std::memcpy(aligned, padded.data(), padded.size());
  std::printf("one durable commit of %zu bytes, %d commits each, in %s\n", bytes, commits,
              own_dir ? "a temporary directory" : dir.c_str());
  auto print = [](const char* way, Figures f) {
    std::printf("  %-22s p50 %7.0f us   p90 %7.0f us\n", way, f.p50_us, f.p90_us);
  };
  {
    Log log(dir + "/log");
    print("log fdatasync", Time(commits, [&] { log.Append(padded); }));
  }
  {
    Log log(dir + "/direct", true);
    const std::string_view view(static_cast<const char*>(aligned), padded.size());
    print("log O_DIRECT|O_DSYNC", Time(commits, [&] { log.Append(view); }));
  }
  {
    Lmdb db(dir + "/sync", 0);
    print("lmdb sync", Time(commits, [&] { Lmdb::Commit(db.Begin(bytes)); }));
  }
  {
    Lmdb db(dir + "/nometasync", MDB_NOMETASYNC);
    print("lmdb nometasync", Time(commits, [&] { Lmdb::Commit(db.Begin(bytes)); }));
  }
  {
    Lmdb db(dir + "/both", MDB_NOMETASYNC);
    Log log(dir + "/both/log");
    print("nometasync + log", Time(commits, [&] {
            MDB_txn* txn = db.Begin(bytes);
            std::thread logger([&] { log.Append(padded); });
            Lmdb::Commit(txn);
            logger.join();
          }));
  }
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
