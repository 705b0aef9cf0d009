// libFuzzer target: the write-ahead log as a restart finds it. The input's first byte picks
// what it is: the raw file (torn records, bad headers, stale passes), or a list of payloads
// that are written as well-formed records so that replay decodes and applies them (a write set
// decoder fed anything). Either way Store::Open over a fresh LMDB environment opens or returns
// an error; it never crashes.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "storage/log.h"
#include "storage/store.h"

namespace {

// One directory for the whole run, emptied before each input.
const std::string& WorkDir() {
  static const std::string dir = [] {
    char name[] = "/tmp/handoff-wal-fuzz-XXXXXX";
    if (::mkdtemp(name) == nullptr) std::abort();
    return std::string(name);
  }();
  return dir;
}

constexpr uint64_t kLogBytes = 256 << 10;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::storage;
  if (size == 0) return 0;
  const std::string dir = WorkDir() + "/data";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    std::ofstream(dir + "/wal", std::ios::binary).write(rest.data(), rest.size());
  } else {
    // Payloads, each preceded by its length (two bytes, little-endian), as records 1, 2, ...
    auto log = Log::Open(dir + "/wal", kLogBytes, /*sync=*/false);
    if (!log.ok()) std::abort();
    for (uint64_t seq = 1; rest.size() >= 2; ++seq) {
      const size_t n = static_cast<uint8_t>(rest[0]) | static_cast<uint8_t>(rest[1]) << 8;
      rest.remove_prefix(2);
      const std::string_view payload = rest.substr(0, n);
      rest.remove_prefix(payload.size());
      if (!(*log)->Fits(payload.size()) || !(*log)->Append(seq, payload).ok()) break;
    }
  }
  EnvOptions options;
  options.map_size = 16 << 20;
  options.sync = false;
  options.log_bytes = kLogBytes;
  auto store = Store::Open(dir, options, "node-fuzz");
  if (!store.ok() && store.status().message().empty()) __builtin_trap();
  return 0;
}
