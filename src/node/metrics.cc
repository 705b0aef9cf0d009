#include "node/metrics.h"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace handoff::node {
namespace {

// A scrape waits at most this long for the loop to render; then it gets the last rendering.
constexpr auto kScrapeWait = std::chrono::seconds(2);

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// A label value as the text format wants it: backslash, double quote and newline escaped.
void AppendLabelValue(std::string* out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

void Histogram::Observe(double value) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  if (it != bounds_.end()) ++counts_[static_cast<size_t>(it - bounds_.begin())];
  sum_ += value;
  ++count_;
}

void MetricsText::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void MetricsText::Sample(std::string_view name, const Labels& labels, double value) {
  out_.append(name);
  if (!labels.empty()) {
    out_.push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_.push_back(',');
      out_.append(labels[i].first).append("=\"");
      AppendLabelValue(&out_, labels[i].second);
      out_.push_back('"');
    }
    out_.push_back('}');
  }
  out_.push_back(' ');
  out_.append(Number(value));
  out_.push_back('\n');
}

void MetricsText::WriteHistogram(std::string_view name, std::string_view help, const Histogram& h) {
  Family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.counts()[i];
    const std::string le = Number(h.bounds()[i]);
    Sample(bucket, {{"le", le}}, static_cast<double>(cumulative));
  }
  Sample(bucket, {{"le", "+Inf"}}, static_cast<double>(h.count()));
  Sample(std::string(name) + "_sum", h.sum());
  Sample(std::string(name) + "_count", static_cast<double>(h.count()));
}

Status ParseHostPort(std::string_view endpoint, std::string* host, int* port) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == endpoint.size()) {
    return Status::InvalidArgument("metrics_endpoint '" + std::string(endpoint) +
                                   "' must be host:port, like 127.0.0.1:9464");
  }
  int p = 0;
  const char* first = endpoint.data() + colon + 1;
  const char* last = endpoint.data() + endpoint.size();
  auto [end, ec] = std::from_chars(first, last, p);
  if (ec != std::errc() || end != last || p < 1 || p > 65535) {
    return Status::InvalidArgument("metrics_endpoint '" + std::string(endpoint) +
                                   "': the port must be 1 to 65535");
  }
  std::string_view h = endpoint.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);  // [::1]
  *host = std::string(h);
  *port = p;
  return Status::OK();
}

MetricsServer::MetricsServer(std::function<void()> wake)
    : wake_(std::move(wake)), server_(std::make_unique<httplib::Server>()) {}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& endpoint,
                                                            std::function<void()> wake) {
  std::string host;
  int port = 0;
  HANDOFF_RETURN_IF_ERROR(ParseHostPort(endpoint, &host, &port));
  std::unique_ptr<MetricsServer> m(new MetricsServer(std::move(wake)));
  // SO_REUSEADDR only: cpp-httplib also sets SO_REUSEPORT by default, which would let this
  // daemon share a port another process listens on instead of saying it is taken.
  m->server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  m->server_->Get("/metrics", [raw = m.get()](const httplib::Request&, httplib::Response& res) {
    std::string text = raw->Scrape();
    if (text.empty()) {
      res.status = 503;
      res.set_content("handoffd has not rendered its metrics yet\n", "text/plain");
      return;
    }
    res.set_content(std::move(text), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!m->server_->bind_to_port(host, port)) {
    return Status::Unavailable("cannot listen on metrics_endpoint " + endpoint +
                               " (address in use, or not an address of this host?)");
  }
  m->port_ = port;
  m->thread_ = std::thread([raw = m.get()] { raw->server_->listen_after_bind(); });
  return m;
}

MetricsServer::~MetricsServer() {
  server_->stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;  // releases any scrape still waiting
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string MetricsServer::Scrape() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t seen = generation_;
  wanted_.store(true);
  lock.unlock();
  wake_();
  lock.lock();
  cv_.wait_for(lock, kScrapeWait, [&] { return generation_ != seen; });
  return latest_;
}

void MetricsServer::Publish(std::string text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wanted_.store(false);
    latest_ = std::move(text);
    ++generation_;
  }
  cv_.notify_all();
}

}  // namespace handoff::node
