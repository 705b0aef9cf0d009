// The metrics half of Node: what GET /metrics shows, rendered on the loop thread when a scrape
// asks (MetricsServer). docs/operations.md lists every metric and example alert rules.

#include <map>

#include "node/node.h"

namespace handoff::node {
namespace {

// Queued intents counted per address, at most (a scrape stays cheap however deep a queue is).

}  // namespace

std::string Node::RenderMetrics() const {
  MetricsText m;
  const int64_t now = options_.clock->NowMs();
  auto events = [&](Counted kind) {
    return static_cast<double>(engine_->event_totals()[static_cast<size_t>(kind)]);
  };

  m.Family("handoff_intents", "gauge", "Intents stored on this node, by status.");
  for (int i = 0; i < kIntentStatusCount; ++i) {
    const auto status = static_cast<IntentStatus>(i);
    m.Sample("handoff_intents", {{"status", IntentStatusName(status)}},
             static_cast<double>(engine_->status_counts()[i]));
  }
  struct Counter {
    const char* name;
    const char* help;
    Counted kind;
  };
  static constexpr Counter kCounters[] = {
      {"handoff_intents_sent_total", "Intents sent by local clients.", Counted::kSubmitted},
      {"handoff_intents_received_total", "Intents forwarded here by peers and stored.",
       Counted::kReceived},
      {"handoff_intents_delivered_total", "Deliveries to local agents (first and later ones).",
       Counted::kDelivered},
      {"handoff_intents_completed_total", "Intents completed by local agents.",
       Counted::kCompleted},
      {"handoff_intents_failed_total", "Intents failed for good by local agents.",
       Counted::kFailed},
      {"handoff_intents_canceled_total", "Intents canceled on this node.", Counted::kCanceled},
      {"handoff_intents_timed_out_total", "Intents past their deadline on this node.",
       Counted::kTimedOut},
      {"handoff_intents_dead_lettered_total",
       "Intents that ended FAILED or TIMED_OUT here (dead letters).", Counted::kDeadLettered},
      {"handoff_lease_expiries_total", "Leases that ran out before the agent finished.",
       Counted::kLeaseExpired},
  };
  for (const Counter& c : kCounters) {
    m.Family(c.name, "counter", c.help);
    m.Sample(c.name, events(c.kind));
  }
  m.Family("handoff_intents_redelivered_total", "counter",
           "Intents returned to their queue for another delivery, by cause.");
  m.Sample("handoff_intents_redelivered_total", {{"cause", "lease_expiry"}},
           events(Counted::kLeaseExpired));
  m.Sample("handoff_intents_redelivered_total", {{"cause", "agent_failure"}},
           events(Counted::kRetrying));
  m.Sample("handoff_intents_redelivered_total", {{"cause", "connection_lost"}},
           events(Counted::kDeliveryFailed));

  m.WriteHistogram("handoff_commit_seconds",
                   "Time to make a batch durable: applying it and appending and flushing its "
                   "log record.",
                   commit_seconds_);
  m.WriteHistogram("handoff_fsync_seconds", "Time of a batch's log append and flush (fdatasync).",
                   fsync_seconds_);
  m.WriteHistogram("handoff_batch_size", "Write requests per durable batch.", batch_size_);
  m.Family("handoff_commits_total", "counter", "Batches made durable.");
  m.Sample("handoff_commits_total", static_cast<double>(stats_.commits));
  m.Family("handoff_log_bytes_total", "counter",
           "Bytes of the batches' write-ahead log records (what each flush writes, headers "
           "aside).");
  m.Sample("handoff_log_bytes_total", static_cast<double>(stats_.log_bytes));
  m.Family("handoff_failed_commits_total", "counter",
           "Batches or turns that could not be stored (disk full, I/O error).");
  m.Sample("handoff_failed_commits_total", static_cast<double>(stats_.failed_commits));

  m.Family("handoff_data_bytes", "gauge", "Bytes of the data file in use (its high-water mark).");
  auto used = store_->env().UsedBytes();
  m.Sample("handoff_data_bytes", used.ok() ? static_cast<double>(*used) : 0);
  m.Family("handoff_map_size_bytes", "gauge", "The most the data file may grow to (map_size).");
  m.Sample("handoff_map_size_bytes", static_cast<double>(options_.map_size));
  m.Family("handoff_accepting_sends", "gauge",
           "1 while new sends are taken; 0 while the store is full or the disk refuses writes.");
  m.Sample("handoff_accepting_sends", service_->accepting_sends() ? 1 : 0);
  m.Family("handoff_client_backlog_bytes", "gauge",
           "Replies and deliveries agent connections have not read yet.");
  m.Sample("handoff_client_backlog_bytes", static_cast<double>(stats_.backlog_bytes));
  if (streams_) {
    m.Family("handoff_agent_stream_connections", "gauge",
             "Agent connections open on the stream socket (agent_stream).");
    m.Sample("handoff_agent_stream_connections", static_cast<double>(streams_->connections()));
  }
  m.Family("handoff_backlog_dropped_requests_total", "counter",
           "Requests dropped because their connection left too much unread.");
  m.Sample("handoff_backlog_dropped_requests_total", static_cast<double>(stats_.backlog_dropped));

  m.Family("handoff_updates_held", "gauge",
           "Updates for the origins of forwarded intents held for each intent's next change "
           "(update_delay).");
  m.Sample("handoff_updates_held", static_cast<double>(engine_->held_updates()));

  // Per peer.
  auto txn = BeginView();
  struct PeerRow {
    std::string name;
    bool connected;
    uint64_t depth;
    double oldest_age_s;
    uint64_t retransmissions;
    uint64_t auth_failures;
  };
  std::vector<PeerRow> peers;
  for (const auto& link : links_) {
    PeerRow row{
        link->name(),         link->connected(now), link->pending(), 0, link->retransmissions(),
        link->auth_failures()};
    auto impostor = impostor_messages_.find(link->name());
    if (impostor != impostor_messages_.end()) row.auth_failures += impostor->second;
    if (auto age = OldestPendingAgeMs(txn, *link, now)) {
      row.oldest_age_s = static_cast<double>(*age) / 1000.0;
    }
    peers.push_back(std::move(row));
  }
  auto per_peer = [&](const char* name, const char* type, const char* help, auto value) {
    m.Family(name, type, help);
    for (const PeerRow& p : peers) m.Sample(name, {{"peer", p.name}}, value(p));
  };
  per_peer("handoff_peer_connected", "gauge", "1 while the peer answers within 3 heartbeats.",
           [](const PeerRow& p) { return p.connected ? 1.0 : 0.0; });
  per_peer("handoff_peer_outbox_depth", "gauge", "Messages for the peer not acknowledged yet.",
           [](const PeerRow& p) { return static_cast<double>(p.depth); });
  per_peer("handoff_peer_oldest_pending_age_seconds", "gauge",
           "Age of the oldest message for the peer not acknowledged yet (0: none).",
           [](const PeerRow& p) { return p.oldest_age_s; });
  per_peer("handoff_peer_retransmissions_total", "counter", "Messages sent to the peer again.",
           [](const PeerRow& p) { return static_cast<double>(p.retransmissions); });
  per_peer("handoff_peer_auth_failures_total", "counter",
           "Handshakes with the peer that failed, and messages refused under its name.",
           [](const PeerRow& p) { return static_cast<double>(p.auth_failures); });

  // Per local address: receivers, what they hold, what waits for them.
  std::map<std::string, AddressSummary> addresses = SummarizeAddresses(receivers_, *engine_);
  if (txn.ok()) {
    for (auto& [address, row] : addresses) {
      auto queued = store_->CountQueued(*txn, address, kMaxQueuedCounted);
      if (queued.ok()) row.queued = *queued;
    }
  }
  auto per_address = [&](const char* name, const char* help, auto value) {
    m.Family(name, "gauge", help);
    for (const auto& [address, row] : addresses) {
      m.Sample(name, {{"address", address}}, static_cast<double>(value(row)));
    }
  };
  per_address("handoff_agent_receivers", "Connections receiving for the address.",
              [](const AddressSummary& r) { return r.receivers.size(); });
  per_address("handoff_agent_in_flight_intents",
              "Intents delivered to the address's receivers and still leased.",
              [](const AddressSummary& r) { return r.in_flight; });
  per_address("handoff_agent_queued_intents", "Intents waiting for delivery to the address.",
              [](const AddressSummary& r) { return r.queued; });
  m.Family("handoff_agent_paused", "gauge",
           "1 while the address is paused (handoffctl pause): nothing is delivered to it.");
  for (const auto& [address, row] : addresses) {
    m.Sample("handoff_agent_paused", {{"address", address}},
             engine_->IsPaused(address) ? 1.0 : 0.0);
  }
  return m.Release();
}

}  // namespace handoff::node
