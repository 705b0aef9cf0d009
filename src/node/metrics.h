// Metrics: the Prometheus text format (version 0.0.4), and the HTTP endpoint that serves it.
//
// MetricsText builds an exposition: each family once, with its HELP and TYPE lines, label
// values escaped. Histogram keeps fixed buckets. MetricsServer serves GET /metrics with
// cpp-httplib on threads of its own; the loop thread never blocks on it: a scrape asks the loop
// for a fresh rendering (waking it) and waits for it a bounded time, answering with the last one
// if the loop is busy. docs/operations.md lists every metric.
//
// Thread safety: MetricsText and Histogram belong to one thread. MetricsServer's wanted() and
// Publish() are for the loop thread; its HTTP threads only read what Publish handed over.

#ifndef HANDOFF_NODE_METRICS_H_
#define HANDOFF_NODE_METRICS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "handoff/status.h"

namespace httplib {
class Server;
}

namespace handoff::node {

// Counts of observations at or below fixed upper bounds, their sum and their number.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<uint64_t>& counts() const { return counts_; }  // per bound, not cumulative
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

class MetricsText {
 public:
  // Starts a family: its HELP and TYPE lines. `type` is counter, gauge or histogram.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // A sample of the family last started (`suffix` for a histogram's _bucket, _sum, _count).
  void Sample(std::string_view name, const Labels& labels, double value);
  void Sample(std::string_view name, double value) { Sample(name, {}, value); }
  // A whole histogram family.
  void WriteHistogram(std::string_view name, std::string_view help, const Histogram& h);

  std::string Release() { return std::move(out_); }

 private:
  std::string out_;
};

class MetricsServer {
 public:
  // Listens on `host:port` (the [node] metrics_endpoint). `wake` wakes the loop thread; it
  // must be safe to call from any thread.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& endpoint,
                                                      std::function<void()> wake);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // For the loop: a scrape waits for a rendering.
  bool wanted() const { return wanted_.load(); }
  void Publish(std::string text);
  int port() const { return port_; }

 private:
  MetricsServer(std::function<void()> wake);
  // For an HTTP thread: the freshest rendering it can get within kScrapeWait.
  std::string Scrape();

  std::function<void()> wake_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> wanted_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::string latest_;       // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_: renderings published
};

// "host:port" (an IPv6 host in brackets: "[::1]:9464", given back without them) with a port
// of 1-65535 and a non-empty host; InvalidArgument otherwise.
Status ParseHostPort(std::string_view endpoint, std::string* host, int* port);

}  // namespace handoff::node

#endif  // HANDOFF_NODE_METRICS_H_
