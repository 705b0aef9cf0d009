// handoff-bench: the "durable handoff round trip", measured against real daemons it starts.
//
// Agent A sends an intent with a payload of --payload bytes (durable before send returns), agent
// B completes it with a ~64-byte result (durable before complete returns), and A receives the
// result. A keeps --window intents in flight; the figures are round trips per second over the
// whole run and the latency of each round trip (send issued to result received).
//
// Both agents speak the agent protocol directly (pipelined, as a busy agent would), so the
// figures measure the daemons, not a client library's request/response pacing. Every result is
// checked; a lost or wrong one makes the run fail.
//
//   handoff-bench [--nodes 1|2] [--window 256] [--count 20000] [--payload 1024] [--no-fsync]
//                 [--wait-request] [--ack] [--json]
//
// A waits for each result with the send itself (its wait_rid), or with --wait-request with a
// `wait` request sent once the send's reply came back; either asks for the result without the
// payload A sent (wait_payload / payload: false), as Client::SendAndWait does. With --ack, B
// acknowledges each delivery (and starts it) before it completes it, as the C++ and Python Agents
// do.
//
// With HANDOFF_BENCH_KEEP set in the environment, the temporary directory (each daemon's log
// and data directory) is kept and named on stderr.

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "base/clock.h"
#include "base/intent_id.h"
#include "bench/agent_wire.h"
#include "bench/bench_daemons.h"
#include "bench/proc_cpu.h"
#include "handoff/client.h"
#include "net/stream.h"
#include "support/free_port.h"
#include "wire/agent_protocol.h"

namespace {

using handoff::MsgWriter;
using namespace handoff::bench;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kReceiver = "agent://bench/b/worker";

std::string Request(int protocol, std::string_view op, uint64_t rid,
                    const std::function<void(MsgWriter&)>& fill) {
  handoff::wire::RequestBuilder b(op, rid, static_cast<uint64_t>(protocol));
  fill(b.w());
  return b.Finish();
}

// A JSON value as the clients encode it (the C++ client through nlohmann::json, the Python
// client through msgpack): every header its smallest, as msgpack's packer writes them. The
// daemon keeps such a value as it came; our own MsgWriter writes map32 headers, which it would
// encode again.
template <typename Fill>
std::string ClientEncoded(Fill fill) {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  fill(pk);
  return std::string(out.data(), out.size());
}

// Calls `fn(reply)` for each reply or push of a message; counts one that does not decode.
template <typename Fn>
void ForEachReply(std::string_view msg, uint64_t& errors, Fn fn) {
  auto replies = handoff::wire::DecodeReplies(msg);
  if (!replies.ok()) {
    ++errors;
    return;
  }
  for (handoff::wire::Reply& reply : *replies) fn(reply);
}

// Agent B: completes every delivery at once with a small result naming the payload's n; with
// `ack`, acknowledges and starts it first, in the same batch.
void RunAgent(zmq::context_t& ctx, const std::string& endpoint, const std::string& transport,
              int credit, int protocol, bool ack, std::atomic<bool>& stop,
              std::atomic<uint64_t>& errors) {
  ::pthread_setname_np(::pthread_self(), "agent-b");  // for the CPU breakdown by thread
  Wire s(ctx, endpoint, transport);
  uint64_t rid = 1;
  auto send = [&](const std::string& frame) { s.Send(frame); };
  Outbox completes(s, protocol);
  uint64_t decode_errors = 0;
  send(Request(protocol, "receive", rid++, [&](MsgWriter& w) {
    w.Field("address", kReceiver);
    w.Field("credit", static_cast<uint64_t>(credit));
  }));
  auto last_register = SteadyClock::now();
  std::chrono::milliseconds patience(100);  // for the first message of each look
  while (!stop.load()) {
    std::optional<std::string_view> msg = s.Receive(patience);
    if (SteadyClock::now() - last_register > std::chrono::seconds(1)) {
      send(Request(protocol, "receive", rid++, [&](MsgWriter& w) {
        w.Field("address", kReceiver);
        w.Field("credit", static_cast<uint64_t>(credit));
      }));
      last_register = SteadyClock::now();
    }
    for (; msg; msg = s.Receive(std::chrono::milliseconds(0))) {
      ForEachReply(*msg, decode_errors, [&](handoff::wire::Reply& reply) {
        if (reply.push.empty()) {
          if (!reply.status.ok()) ++errors;
          return;
        }
        const msgpack::object* intent = reply.body().Find("intent");
        auto m = handoff::MapReader::From(*intent, "intent");
        std::string id;
        uint64_t attempt = 0;
        int64_t n = -1;
        (void)m->String("intent_id", &id);
        (void)m->OptUint("delivery_attempt", &attempt);
        if (const msgpack::object* p = m->Find("payload")) {
          auto pm = handoff::MapReader::From(*p, "payload");
          if (pm.ok()) (void)pm->OptInt("n", &n);
        }
        if (ack) {
          completes.Add(Request(protocol, "ack", rid++, [&](MsgWriter& w) {
            w.Field("intent_id", id);
            w.Field("attempt", attempt);
            w.Field("start", true);
          }));
        }
        completes.Add(Request(protocol, "complete", rid++, [&](MsgWriter& w) {
          w.Field("intent_id", id);
          w.Field("attempt", attempt);
          w.FieldRaw("result", ClientEncoded([&](auto& pk) {
                       pk.pack_map(3);
                       pk.pack(std::string_view("n"));
                       pk.pack(n);
                       pk.pack(std::string_view("ok"));
                       pk.pack(true);
                       pk.pack(std::string_view("note"));
                       pk.pack(std::string_view("processed by the bench agent"));
                     }));
        }));
      });
      completes.Flush();  // what this message asked for goes back before the next is read
    }
  }
  errors += decode_errors;
}

struct Outcome {
  std::vector<int64_t> latency_us;
  uint64_t wrong = 0, lost = 0, errors = 0;
  double seconds = 0;
};

// Agent A: keeps `window` round trips in flight until `count` are done.
Outcome RunSender(zmq::context_t& ctx, const Options& o, const std::string& endpoint) {
  Wire s(ctx, endpoint, o.transport);
  Outbox outbox(s, o.protocol);
  struct Flight {
    int n;
    std::string id;
    SteadyClock::time_point t0;
  };
  std::map<uint64_t, Flight> sends, waits;  // by rid
  const std::string data(static_cast<size_t>(std::max(0, o.payload - 24)), 'x');
  Outcome out;
  out.latency_us.reserve(static_cast<size_t>(o.count));
  uint64_t rid = 1;
  int issued = 0, done = 0;
  const auto start = SteadyClock::now();
  auto last_progress = start;
  // Keeps the window full: called at the start and after each message that came back, so that
  // new sends go out as results arrive rather than once everything waiting has been read.
  auto top_up = [&] {
    while (issued < o.count && issued - done < o.window) {
      Flight f{issued, handoff::NewIntentId(handoff::SystemClock::Instance().NowMs()).ToString(),
               SteadyClock::now()};
      const uint64_t send_rid = rid++;
      std::string frame = Request(o.protocol, "send", send_rid, [&](MsgWriter& w) {
        if (!o.wait_request) {  // the result comes back as the answer to a wait with this rid
          w.Field("wait_rid", rid);
          w.Field("wait_timeout_ms", uint64_t{120'000});
          w.Field("wait_payload", false);  // A has it, as Client::SendAndWait does
        }
        w.Field("intent_id", f.id);
        w.Field("intent_type", "intent.bench.roundtrip.v1");
        w.Field("from_agent", "agent://bench/a/sender");
        w.Field("to_agent", kReceiver);
        w.FieldRaw("payload", ClientEncoded([&](auto& pk) {
                     pk.pack_map(2);
                     pk.pack(std::string_view("n"));
                     pk.pack(static_cast<int64_t>(f.n));
                     pk.pack(std::string_view("data"));
                     pk.pack(data);
                   }));
      });
      outbox.Add(std::move(frame));
      if (o.wait_request) {
        sends.emplace(send_rid, std::move(f));
      } else {
        sends.emplace(send_rid, f);
        waits.emplace(rid++, std::move(f));
      }
      ++issued;
    }
    outbox.Flush();
  };
  while (done + static_cast<int>(out.lost) < o.count) {
    top_up();
    for (auto msg = s.Receive(std::chrono::milliseconds(1000)); msg;
         msg = s.Receive(std::chrono::milliseconds(0))) {
      ForEachReply(*msg, out.errors, [&](handoff::wire::Reply& r) {
        handoff::wire::Reply* reply = &r;
        if (auto it = sends.find(reply->rid); it != sends.end()) {
          Flight f = std::move(it->second);
          sends.erase(it);
          if (!reply->status.ok()) {
            std::fprintf(stderr, "send %d refused: %s\n", f.n, reply->status.ToString().c_str());
            ++out.errors;
            ++out.lost;
            if (!o.wait_request) waits.erase(reply->rid + 1);  // a refused send parks no wait
            return;
          }
          if (!o.wait_request) return;  // its wait was parked with it
          outbox.Add(Request(o.protocol, "wait", rid, [&](MsgWriter& w) {
            w.Field("intent_id", f.id);
            w.Field("timeout_ms", uint64_t{120'000});
            w.Field("payload", false);
          }));
          waits.emplace(rid++, std::move(f));
        } else if (auto wt = waits.find(reply->rid); wt != waits.end()) {
          Flight f = std::move(wt->second);
          waits.erase(wt);
          const msgpack::object* intent =
              reply->status.ok() ? reply->body().Find("intent") : nullptr;
          bool right = false;
          if (intent != nullptr) {
            auto m = handoff::MapReader::From(*intent, "intent");
            std::string status;
            int64_t n = -1;
            if (m.ok()) {
              (void)m->OptString("status", &status);
              if (const msgpack::object* r = m->Find("result")) {
                auto rm = handoff::MapReader::From(*r, "result");
                if (rm.ok()) (void)rm->OptInt("n", &n);
              }
            }
            right = status == "COMPLETED" && n == f.n;
          }
          if (!right) {
            if (out.wrong++ == 0) {
              std::fprintf(stderr, "round trip %d came back wrong: %s\n", f.n,
                           reply->status.ok() ? "not COMPLETED with its result"
                                              : reply->status.ToString().c_str());
            }
            return;
          }
          out.latency_us.push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - f.t0)
                  .count());
          ++done;
          last_progress = SteadyClock::now();
        }
      });
      top_up();
    }
    if (SteadyClock::now() - last_progress > std::chrono::seconds(60)) {
      out.lost = static_cast<uint64_t>(o.count - done);
      std::fprintf(stderr, "no progress for 60 s: %llu round trips lost\n",
                   static_cast<unsigned long long>(out.lost));
      break;
    }
    if (out.wrong > 0) break;
  }
  out.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // The same slack handoffd keeps (daemons/handoffd.cc). Without it glibc gives the agents' and
  // ZeroMQ's freed blocks back to the kernel after each burst (madvise, and a TLB flush on every
  // core), and the benchmark's own threads took a fifth more CPU per round trip, CPU the
  // daemons share on a small machine (docs/performance.md).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  Options o;
  bool no_fsync = false;
  CLI::App app{"handoff-bench: durable handoff round trips against real handoffd daemons"};
  app.add_option("--nodes", o.nodes, "1: A and B on one daemon; 2: A on node-a, B on node-b")
      ->check(CLI::Range(1, 2));
  app.add_option("--window", o.window, "round trips in flight (default 256)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--count", o.count, "round trips to run (default 20000)")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--payload", o.payload,
                 "payload bytes, encoded (default 1024; at least the ~24 bytes of its fields)")
      ->check(CLI::Range(0, 16 << 20));
  app.add_flag("--no-fsync", no_fsync, "run the daemons with fsync = false");
  app.add_flag("--json", o.json, "print one JSON object");
  app.add_flag("--wait-request", o.wait_request,
               "wait with a separate wait request after each send's reply, instead of the "
               "send's wait_rid");
  app.add_flag("--ack", o.ack,
               "B acknowledges and starts each delivery before it completes it, as the C++ and "
               "Python Agents do");
  app.add_option("--peer-security", o.peer_security,
                 "curve (default: encrypted, authenticated links) or none (plaintext)")
      ->check(CLI::IsMember({"curve", "none"}));
  app.add_option("--handoffd", o.handoffd, "the handoffd binary to start");
  app.add_option("--transport", o.transport,
                 "how the agents reach their daemon: stream (default: its stream socket, as the "
                 "clients do) or zeromq (its ZeroMQ agent socket)")
      ->check(CLI::IsMember({"stream", "zeromq"}));
  app.add_option("--protocol", o.protocol,
                 "agent protocol version the agents speak: 2 (default) sends and takes batches, "
                 "1 one message per request, reply and push")
      ->check(CLI::Range(1, 2));
  std::vector<std::string> node_config;
  app.add_option("--node-config", node_config,
                 "an extra [node] line for every daemon, e.g. 'retention = \"1m\"' (repeatable)");
  CLI11_PARSE(app, argc, argv);
  o.fsync = !no_fsync;
  for (const std::string& line : node_config) o.extra_node_config += line + "\n";

  char tmpl[] = "/tmp/handoff-bench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  std::vector<Daemon> daemons;
  daemons.push_back({"node-a", "ipc://" + dir + "/a.sock"});
  if (o.nodes == 2) {
    daemons.push_back({"node-b", "ipc://" + dir + "/b.sock"});
    const int ports[] = {handoff::testing::ClaimTcpPort(), handoff::testing::ClaimTcpPort()};
    if (ports[0] == 0 || ports[1] == 0) {
      std::fprintf(stderr, "handoff-bench: no free TCP port below the ephemeral range\n");
      return 1;
    }
    const std::string a_port = std::to_string(ports[0]), b_port = std::to_string(ports[1]);
    auto keys = PeerKeys(o, dir, {"node-a", "node-b"});
    if (!keys) return 1;
    StartDaemon(o, dir, daemons[0],
                "peer_endpoint = \"tcp://127.0.0.1:" + a_port + "\"\n" + (*keys)["node-a"].own +
                    "[[peers]]\nname = \"node-b\"\nendpoint = \"tcp://127.0.0.1:" + b_port +
                    "\"\n" + (*keys)["node-b"].listed +
                    "[[routes]]\nmatch = \"agent://bench/b/*\"\nnode = \"node-b\"\n");
    StartDaemon(o, dir, daemons[1],
                "peer_endpoint = \"tcp://127.0.0.1:" + b_port + "\"\n" + (*keys)["node-b"].own +
                    "[[peers]]\nname = \"node-a\"\nendpoint = \"tcp://127.0.0.1:" + a_port +
                    "\"\n" + (*keys)["node-a"].listed);
  } else {
    StartDaemon(o, dir, daemons[0], "");
  }
  for (const Daemon& d : daemons) {
    if (!WaitReady(d)) {
      std::fprintf(stderr, "handoff-bench: %s did not start (logs in %s)\n", d.name.c_str(),
                   dir.c_str());
      for (auto& each : daemons) StopDaemon(each);
      return 1;
    }
  }

  zmq::context_t ctx(2);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> agent_errors{0};
  const std::string b_endpoint = daemons.back().endpoint;
  std::thread agent(RunAgent, std::ref(ctx), b_endpoint, o.transport, std::max(o.window, 1) * 2,
                    o.protocol, o.ack, std::ref(stop), std::ref(agent_errors));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let B register first
  std::vector<int64_t> commits_before, log_bytes_before;
  std::vector<double> cpu_before;
  std::vector<std::map<pid_t, ThreadCpu>> threads_before;
  for (const Daemon& d : daemons) {
    commits_before.push_back(Commits(d));
    log_bytes_before.push_back(LogBytes(d));
    cpu_before.push_back(CpuSeconds(d.pid));
    threads_before.push_back(ThreadsCpu(d.pid, "loop"));
  }
  const double self_cpu_before = SelfCpuSeconds();
  const auto self_threads_before = ThreadsCpu(::getpid(), "agent_a");
  Outcome out = RunSender(ctx, o, daemons.front().endpoint);
  // Agent B's thread is read before it is joined: an exited thread leaves /proc/PID/task.
  const auto bench_by_role = CpuByRole(self_threads_before, ThreadsCpu(::getpid(), "agent_a"));
  stop.store(true);
  agent.join();
  const double bench_cpu = SelfCpuSeconds() - self_cpu_before;
  std::vector<double> daemon_cpu;
  std::vector<std::map<std::string, double>> daemon_by_role;
  for (size_t i = 0; i < daemons.size(); ++i) {
    daemon_cpu.push_back(CpuSeconds(daemons[i].pid) - cpu_before[i]);
    daemon_by_role.push_back(CpuByRole(threads_before[i], ThreadsCpu(daemons[i].pid, "loop")));
  }
  int64_t commits = 0;
  for (size_t i = 0; i < daemons.size(); ++i) commits += Commits(daemons[i]) - commits_before[i];
  // Bytes of write-ahead log per round trip, each daemon (-1 when it does not say).
  std::vector<double> log_bytes_per_rt;
  for (size_t i = 0; i < daemons.size(); ++i) {
    const int64_t after = LogBytes(daemons[i]);
    log_bytes_per_rt.push_back(after < 0 || log_bytes_before[i] < 0 || out.latency_us.empty()
                                   ? -1.0
                                   : static_cast<double>(after - log_bytes_before[i]) /
                                         static_cast<double>(out.latency_us.size()));
  }
  std::vector<Footprint> footprints;
  for (const Daemon& d : daemons) footprints.push_back(Measure(d, dir));
  for (auto& d : daemons) StopDaemon(d);
  std::error_code ec;
  if (std::getenv("HANDOFF_BENCH_KEEP") != nullptr) {
    std::fprintf(stderr, "handoff-bench: kept %s (daemon logs and data)\n", dir.c_str());
  } else {
    std::filesystem::remove_all(dir, ec);
  }

  const double rps = out.seconds > 0 ? static_cast<double>(out.latency_us.size()) / out.seconds : 0;
  const int64_t p50 = Percentile(out.latency_us, 0.50);
  const int64_t p99 = Percentile(out.latency_us, 0.99);
  const int64_t max =
      out.latency_us.empty() ? 0 : *std::max_element(out.latency_us.begin(), out.latency_us.end());
  const uint64_t errors = out.errors + agent_errors.load();
  // CPU microseconds per round trip, so a run shows who used the machine's cores.
  auto per_rt = [&](double seconds) {
    return out.latency_us.empty() ? 0.0
                                  : seconds * 1e6 / static_cast<double>(out.latency_us.size());
  };
  auto per_rt_by_role = [&](const std::map<std::string, double>& roles) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [role, seconds] : roles) j[role] = per_rt(seconds);
    return j;
  };
  auto print_by_role = [&](const std::map<std::string, double>& roles) {
    std::string line;
    for (const auto& [role, seconds] : roles) {
      char part[64];
      std::snprintf(part, sizeof(part), "%s%s %.1f", line.empty() ? "" : ", ", role.c_str(),
                    per_rt(seconds));
      line += part;
    }
    std::printf("  %-18s %s\n", "", line.c_str());
  };
  const bool ok =
      out.latency_us.size() == static_cast<size_t>(o.count) && out.wrong == 0 && out.lost == 0;
  if (o.json) {
    nlohmann::ordered_json j{{"round_trips_per_s", static_cast<int64_t>(rps)},
                             {"p50_us", p50},
                             {"p99_us", p99},
                             {"max_us", max},
                             {"completed", out.latency_us.size()},
                             {"lost", out.lost},
                             {"wrong", out.wrong},
                             {"errors", errors},
                             {"seconds", out.seconds},
                             {"commits", commits},
                             {"nodes", o.nodes},
                             {"window", o.window},
                             {"count", o.count},
                             {"payload", o.payload},
                             {"fsync", o.fsync},
                             {"peer_security", o.peer_security},
                             {"wait", o.wait_request ? "request" : "wait_rid"},
                             {"ack", o.ack},
                             {"protocol", o.protocol},
                             {"transport", o.transport},
                             {"daemon_glibc_tunables", DaemonGlibcTunables()},
                             {"bench_cpu_us_per_round_trip", per_rt(bench_cpu)},
                             {"bench_cpu_us_by_thread", per_rt_by_role(bench_by_role)},
                             {"ok", ok}};
    for (size_t i = 0; i < daemons.size(); ++i) {
      const Footprint& f = footprints[i];
      j["daemons"][daemons[i].name] = {{"cpu_us_per_round_trip", per_rt(daemon_cpu[i])},
                                       {"cpu_us_by_thread", per_rt_by_role(daemon_by_role[i])},
                                       {"commit_us_avg", f.commit_us_avg},
                                       {"log_bytes_per_round_trip", log_bytes_per_rt[i]},
                                       {"rss_kb", f.rss_kb},
                                       {"peak_rss_kb", f.peak_rss_kb},
                                       {"data_file_bytes", f.file_bytes},
                                       {"data_file_disk_bytes", f.file_disk_bytes},
                                       {"data_in_use_bytes", f.live_data_bytes},
                                       {"purged", f.purged}};
    }
    if (!o.extra_node_config.empty()) j["node_config"] = o.extra_node_config;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf(
        "durable handoff round trip: %d node(s), window %d, %d round trips, %d-byte "
        "payload, fsync %s, peer_security %s, protocol %d over %s, %s%s, daemons' "
        "GLIBC_TUNABLES %s\n",
        o.nodes, o.window, o.count, o.payload, o.fsync ? "on" : "off", o.peer_security.c_str(),
        o.protocol, o.transport.c_str(),
        o.wait_request ? "a wait request after each send" : "each send waits (wait_rid)",
        o.ack ? ", B acks before it completes" : "", DaemonGlibcTunables().c_str());
    std::printf("  %-18s %12.0f\n", "round trips/s", rps);
    std::printf("  %-18s %12.3f ms\n", "p50 latency", p50 / 1000.0);
    std::printf("  %-18s %12.3f ms\n", "p99 latency", p99 / 1000.0);
    std::printf("  %-18s %12.3f ms\n", "max latency", max / 1000.0);
    std::printf("  %-18s %12lld   (%.1f round trips per commit, all daemons)\n", "commits",
                static_cast<long long>(commits),
                commits > 0 ? static_cast<double>(out.latency_us.size()) / commits : 0.0);
    std::printf("  %-18s %12.1f us per round trip (the bench's own agents), by thread:\n",
                "bench CPU", per_rt(bench_cpu));
    print_by_role(bench_by_role);
    for (size_t i = 0; i < daemons.size(); ++i) {
      std::printf(
          "  %-18s %12.1f us per round trip; commits take %.2f ms on average; %.0f bytes of "
          "log per round trip; by thread:\n",
          (daemons[i].name + " CPU").c_str(), per_rt(daemon_cpu[i]),
          footprints[i].commit_us_avg / 1000.0, log_bytes_per_rt[i]);
      print_by_role(daemon_by_role[i]);
    }
    for (size_t i = 0; i < daemons.size(); ++i) {
      const Footprint& f = footprints[i];
      std::printf(
          "  %-18s RSS %lld KiB (peak %lld KiB), data file %lld bytes (%lld on disk), "
          "%lld purged\n",
          daemons[i].name.c_str(), static_cast<long long>(f.rss_kb),
          static_cast<long long>(f.peak_rss_kb), static_cast<long long>(f.file_bytes),
          static_cast<long long>(f.file_disk_bytes), static_cast<long long>(f.purged));
    }
    std::printf("  %-18s %12zu   (lost %llu, wrong %llu, errors %llu)\n", "completed",
                out.latency_us.size(), static_cast<unsigned long long>(out.lost),
                static_cast<unsigned long long>(out.wrong),
                static_cast<unsigned long long>(errors));
  }
  if (!ok) {
    std::fprintf(stderr, "handoff-bench: FAILED: %llu lost, %llu wrong\n",
                 static_cast<unsigned long long>(out.lost),
                 static_cast<unsigned long long>(out.wrong));
    return 1;
  }
  return 0;
}
