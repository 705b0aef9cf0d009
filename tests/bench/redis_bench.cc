// handoff-redis-bench: handoff-bench's round trip, done with Redis Streams, against a
// redis-server it starts itself, so that the two can be compared side by side
// (tests/bench/compare_redis.py runs them interleaved and prints the ratios).
//
// The same workload as handoff-bench: agent A adds a request with a payload of --payload bytes
// to a stream (XADD: with `appendfsync always` the reply comes only after the AOF is fsync'd),
// agent B reads it through a consumer group (XREADGROUP, which records it as pending to B, as a
// handoff delivery leases it), adds a ~64-byte result naming the request's n to a result
// stream and acknowledges the request (XADD and XACK, pipelined, not in a MULTI: the cheapest
// way Redis offers, and a crash between the two leaves the request pending, to be read again);
// A reads the result (XREAD). A keeps --window requests in flight. Every result is checked.
//
// Each agent has its own connection (A two: one to add, one to read results, since a blocking
// read holds its connection) and every connection pipelines: A adds up to a window of requests
// before reading their replies, B reads up to a window of requests at once and writes all their
// results before reading the replies. Redis runs on 127.0.0.1 TCP, one I/O thread (its default),
// or with --unix-socket on a Unix socket (as handoff's agents use by default).
//
//   handoff-redis-bench [--window 256] [--count 20000] [--payload 1024]
//                       [--appendfsync always|everysec|no] [--unix-socket]
//                       [--redis-server PATH] [--json]

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_daemons.h"
#include "bench/proc_cpu.h"
#include "support/free_port.h"

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kRequests = "bench:requests";
constexpr const char* kResults = "bench:results";
constexpr const char* kGroup = "workers";

struct Options {
  int window = 256;
  int count = 20'000;
  int payload = 1024;
  std::string appendfsync = "always";
  std::string redis_server = "redis-server";
  bool json = false;
  bool unix_socket = false;
};

// Where the clients reach redis-server: 127.0.0.1:port, or a Unix socket when `path` is set.
struct Where {
  int port = 0;
  std::string path;
};

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

Context Connect(const Where& where) {
  Context c(where.path.empty() ? redisConnect("127.0.0.1", where.port)
                               : redisConnectUnix(where.path.c_str()));
  if (c == nullptr || c->err != 0) return nullptr;
  return c;
}

// A command's (binary-safe) arguments as hiredis's argv calls take them.
struct Argv {
  explicit Argv(const std::vector<std::string>& args) {
    for (const std::string& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int argc() const { return static_cast<int>(ptrs.size()); }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
};

// Runs one command and waits for its reply.
Reply Command(redisContext* c, const std::vector<std::string>& args) {
  Argv a(args);
  return Reply(
      static_cast<redisReply*>(redisCommandArgv(c, a.argc(), a.ptrs.data(), a.lens.data())));
}

// Queues one command on the connection's pipeline (its reply comes with Next).
void Append(redisContext* c, const std::vector<std::string>& args) {
  Argv a(args);
  redisAppendCommandArgv(c, a.argc(), a.ptrs.data(), a.lens.data());
}

Reply Next(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK) return nullptr;
  return Reply(static_cast<redisReply*>(r));
}

// The value of `field` in a stream entry's flat [field, value, ...] array, or "".
std::string FieldOf(const redisReply* fields, std::string_view field) {
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY) return "";
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply* k = fields->element[i];
    const redisReply* v = fields->element[i + 1];
    if (k->type == REDIS_REPLY_STRING && std::string_view(k->str, k->len) == field &&
        v->type == REDIS_REPLY_STRING) {
      return std::string(v->str, v->len);
    }
  }
  return "";
}

// Calls `fn(id, fields)` for each entry of an XREAD/XREADGROUP reply (one stream).
template <typename Fn>
void ForEachEntry(const redisReply* reply, Fn fn) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return;
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
    const redisReply* entries = stream->element[1];
    for (size_t e = 0; e < entries->elements; ++e) {
      const redisReply* entry = entries->element[e];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
      fn(std::string(entry->element[0]->str, entry->element[0]->len), entry->element[1]);
    }
  }
}

// What A and B share.
struct Shared {
  explicit Shared(int count)
      : start(SteadyClock::now()),
        t0_ns(static_cast<size_t>(count)),
        seen(static_cast<size_t>(count)) {}
  const SteadyClock::time_point start;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;                             // results received, under mu
  std::vector<std::atomic<int64_t>> t0_ns;  // when request n was added, since start
  std::vector<char> seen;                   // result n received (reader thread only)
  std::vector<int64_t> latency_us;          // reader thread only
  std::atomic<uint64_t> errors{0}, wrong{0};
  std::atomic<bool> stop{false};
};

// Agent A's adding side: keeps `window` requests in flight.
void RunSender(const Where& where, const Options& o, Shared& sh) {
  Context c = Connect(where);
  if (!c) {
    ++sh.errors;
    return;
  }
  const std::string data(static_cast<size_t>(std::max(0, o.payload - 24)), 'x');
  int issued = 0;
  while (issued < o.count && !sh.stop.load()) {
    int room = 0;
    {
      std::unique_lock lock(sh.mu);
      sh.cv.wait_for(lock, std::chrono::seconds(1),
                     [&] { return issued - sh.done < o.window || sh.stop.load(); });
      room = std::min(o.window - (issued - sh.done), o.count - issued);
    }
    if (room <= 0) continue;
    for (int i = 0; i < room; ++i) {
      sh.t0_ns[static_cast<size_t>(issued + i)].store(
          std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - sh.start)
              .count(),
          std::memory_order_relaxed);
      Append(c.get(), {"XADD", kRequests, "*", "n", std::to_string(issued + i), "data", data});
    }
    for (int i = 0; i < room; ++i) {
      Reply r = Next(c.get());
      if (!r || r->type != REDIS_REPLY_STRING) {
        if (sh.errors++ == 0) {
          std::fprintf(stderr, "XADD failed: %s\n", r ? r->str : c->errstr);
        }
        if (!r) return;
      }
    }
    issued += room;
  }
}

// Agent A's reading side: takes results as they come and times each round trip.
void RunResultReader(const Where& where, const Options& o, Shared& sh) {
  Context c = Connect(where);
  if (!c) {
    ++sh.errors;
    return;
  }
  std::string last = "0";
  auto last_progress = SteadyClock::now();
  const std::string batch = std::to_string(std::max(o.window, 16));
  while (!sh.stop.load()) {
    Reply r =
        Command(c.get(), {"XREAD", "COUNT", batch, "BLOCK", "1000", "STREAMS", kResults, last});
    if (!r) {
      ++sh.errors;
      return;
    }
    int got = 0;
    ForEachEntry(r.get(), [&](const std::string& id, const redisReply* fields) {
      last = id;
      const std::string n_text = FieldOf(fields, "n");
      const int n = n_text.empty() ? -1 : std::atoi(n_text.c_str());
      if (n < 0 || n >= o.count || sh.seen[static_cast<size_t>(n)] ||
          FieldOf(fields, "ok") != "1") {
        if (sh.wrong++ == 0)
          std::fprintf(stderr, "a result came back wrong (n %s)\n", n_text.c_str());
        return;
      }
      sh.seen[static_cast<size_t>(n)] = 1;
      const int64_t now_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - sh.start)
              .count();
      sh.latency_us.push_back(
          (now_ns - sh.t0_ns[static_cast<size_t>(n)].load(std::memory_order_relaxed)) / 1000);
      ++got;
    });
    if (got > 0) {
      last_progress = SteadyClock::now();
      std::lock_guard lock(sh.mu);
      sh.done += got;
      if (sh.done >= o.count) sh.stop.store(true);
      sh.cv.notify_all();
    } else if (SteadyClock::now() - last_progress > std::chrono::seconds(60)) {
      std::fprintf(stderr, "no progress for 60 s\n");
      std::lock_guard lock(sh.mu);
      sh.stop.store(true);
      sh.cv.notify_all();
    }
    if (sh.wrong > 0) {
      std::lock_guard lock(sh.mu);
      sh.stop.store(true);
      sh.cv.notify_all();
    }
  }
}

// Agent B: reads requests through the consumer group, answers each with a result and an ack.
void RunWorker(const Where& where, const Options& o, Shared& sh) {
  ::pthread_setname_np(::pthread_self(), "agent_b");
  Context c = Connect(where);
  if (!c) {
    ++sh.errors;
    return;
  }
  const std::string batch = std::to_string(std::max(o.window, 16));
  while (!sh.stop.load()) {
    Reply r = Command(c.get(), {"XREADGROUP", "GROUP", kGroup, "b", "COUNT", batch, "BLOCK", "100",
                                "STREAMS", kRequests, ">"});
    if (!r) {
      ++sh.errors;
      return;
    }
    int appended = 0;
    ForEachEntry(r.get(), [&](const std::string& id, const redisReply* fields) {
      Append(c.get(), {"XADD", kResults, "*", "n", FieldOf(fields, "n"), "ok", "1", "note",
                       "processed by the bench agent"});
      Append(c.get(), {"XACK", kRequests, kGroup, id});
      appended += 2;
    });
    for (int i = 0; i < appended; ++i) {
      Reply done = Next(c.get());
      if (!done || done->type == REDIS_REPLY_ERROR) {
        if (sh.errors++ == 0)
          std::fprintf(stderr, "completing failed: %s\n", done ? done->str : c->errstr);
        if (!done) return;
      }
    }
  }
}

// Starts redis-server on `where` with its AOF in `dir`; its pid, or -1.
pid_t StartRedis(const Options& o, const std::string& dir, const Where& where) {
  pid_t pid = ::fork();
  if (pid == 0) {
    const std::string log = dir + "/redis.log";
    std::freopen(log.c_str(), "a", stdout);
    std::freopen(log.c_str(), "a", stderr);
    const std::string port_text = std::to_string(where.port);
    std::vector<const char*> args = {o.redis_server.c_str(),
                                     "--port",
                                     port_text.c_str(),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir.c_str(),
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     o.appendfsync.c_str(),
                                     "--save",
                                     "",
                                     "--daemonize",
                                     "no",
                                     "--protected-mode",
                                     "no",
                                     "--logfile",
                                     ""};
    if (!where.path.empty()) {
      for (const char* a : {"--unixsocket", where.path.c_str(), "--unixsocketperm", "700"}) {
        args.push_back(a);
      }
    }
    args.push_back(nullptr);
    ::execvp(o.redis_server.c_str(), const_cast<char* const*>(args.data()));
    std::fprintf(stderr, "cannot run %s: %s\n", o.redis_server.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

bool WaitRedis(const Where& where, pid_t pid) {
  const auto until = SteadyClock::now() + std::chrono::seconds(10);
  while (SteadyClock::now() < until) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    if (Context c = Connect(where)) {
      Reply r = Command(c.get(), {"PING"});
      if (r && r->type == REDIS_REPLY_STATUS) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void StopRedis(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"handoff-redis-bench: handoff-bench's durable round trip with Redis Streams"};
  app.add_option("--window", o.window, "round trips in flight (default 256)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--count", o.count, "round trips to run (default 20000)")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--payload", o.payload, "payload bytes (default 1024)")
      ->check(CLI::Range(0, 16 << 20));
  app.add_option("--appendfsync", o.appendfsync,
                 "always (fsync before every reply, the default), everysec or no")
      ->check(CLI::IsMember({"always", "everysec", "no"}));
  app.add_option("--redis-server", o.redis_server, "the redis-server binary to start");
  app.add_flag("--unix-socket", o.unix_socket,
               "clients reach Redis on a Unix socket instead of 127.0.0.1 TCP");
  app.add_flag("--json", o.json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);

  char tmpl[] = "/tmp/handoff-redis-bench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  Where where;
  where.port = handoff::testing::ClaimTcpPort();
  if (o.unix_socket) where.path = dir + "/redis.sock";
  if (where.port == 0) {
    std::fprintf(stderr, "handoff-redis-bench: no free TCP port below the ephemeral range\n");
    return 1;
  }
  pid_t redis = StartRedis(o, dir, where);
  if (redis < 0 || !WaitRedis(where, redis)) {
    std::fprintf(stderr, "handoff-redis-bench: %s did not start (log in %s)\n",
                 o.redis_server.c_str(), dir.c_str());
    StopRedis(redis);
    return 1;
  }
  {
    Context c = Connect(where);
    Reply r =
        c ? Command(c.get(), {"XGROUP", "CREATE", kRequests, kGroup, "0", "MKSTREAM"}) : nullptr;
    if (!r || r->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "handoff-redis-bench: cannot create the consumer group\n");
      StopRedis(redis);
      return 1;
    }
  }

  Shared sh(o.count);
  sh.latency_us.reserve(static_cast<size_t>(o.count));
  const double redis_cpu_before = handoff::bench::CpuSeconds(redis);
  const double self_cpu_before = handoff::bench::SelfCpuSeconds();
  std::thread worker(RunWorker, std::cref(where), std::cref(o), std::ref(sh));
  std::thread reader(RunResultReader, std::cref(where), std::cref(o), std::ref(sh));
  const auto start = SteadyClock::now();
  RunSender(where, o, sh);
  reader.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  sh.stop.store(true);
  worker.join();
  const double redis_cpu = handoff::bench::CpuSeconds(redis) - redis_cpu_before;
  const double bench_cpu = handoff::bench::SelfCpuSeconds() - self_cpu_before;
  StopRedis(redis);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  const size_t completed = sh.latency_us.size();
  const double rps = seconds > 0 ? static_cast<double>(completed) / seconds : 0;
  const int64_t p50 = handoff::bench::Percentile(sh.latency_us, 0.50);
  const int64_t p99 = handoff::bench::Percentile(sh.latency_us, 0.99);
  const int64_t max =
      sh.latency_us.empty() ? 0 : *std::max_element(sh.latency_us.begin(), sh.latency_us.end());
  auto per_rt = [&](double s) {
    return completed == 0 ? 0.0 : s * 1e6 / static_cast<double>(completed);
  };
  const bool ok = completed == static_cast<size_t>(o.count) && sh.wrong == 0 && sh.errors == 0;
  if (o.json) {
    nlohmann::ordered_json j{{"system", "redis"},
                             {"round_trips_per_s", static_cast<int64_t>(rps)},
                             {"p50_us", p50},
                             {"p99_us", p99},
                             {"max_us", max},
                             {"completed", completed},
                             {"wrong", sh.wrong.load()},
                             {"errors", sh.errors.load()},
                             {"seconds", seconds},
                             {"window", o.window},
                             {"count", o.count},
                             {"payload", o.payload},
                             {"appendfsync", o.appendfsync},
                             {"transport", o.unix_socket ? "unix" : "tcp"},
                             {"redis_cpu_us_per_round_trip", per_rt(redis_cpu)},
                             {"bench_cpu_us_per_round_trip", per_rt(bench_cpu)},
                             {"ok", ok}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf(
        "durable round trip with Redis Streams: window %d, %d round trips, %d-byte payload, "
        "appendfsync %s, over %s\n",
        o.window, o.count, o.payload, o.appendfsync.c_str(),
        o.unix_socket ? "a Unix socket" : "127.0.0.1 TCP");
    std::printf("  %-18s %12.0f\n", "round trips/s", rps);
    std::printf("  %-18s %12.3f ms\n", "p50 latency", p50 / 1000.0);
    std::printf("  %-18s %12.3f ms\n", "p99 latency", p99 / 1000.0);
    std::printf("  %-18s %12.3f ms\n", "max latency", max / 1000.0);
    std::printf("  %-18s %12.1f us per round trip\n", "redis-server CPU", per_rt(redis_cpu));
    std::printf("  %-18s %12.1f us per round trip\n", "bench CPU", per_rt(bench_cpu));
    std::printf("  %-18s %12zu   (wrong %llu, errors %llu)\n", "completed", completed,
                static_cast<unsigned long long>(sh.wrong.load()),
                static_cast<unsigned long long>(sh.errors.load()));
  }
  if (!ok) {
    std::fprintf(stderr, "handoff-redis-bench: FAILED\n");
    return 1;
  }
  return 0;
}
