// Node's loop: start-up, the poll loop, turns (decoding requests, running them against the
// layered view, delivering and answering waits). node_send.cc has what goes back to agent
// connections; node_agents.cc what comes from them (the two agent sockets); node_commit.cc
// what happens to a turn's batch; node_peers.cc the peer links.

#include "node/node.h"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/names.h"
#include "base/time_format.h"
#include "base/units.h"
#include "net/endpoint.h"

namespace handoff::node {
namespace {

// The longest the loop sleeps with nothing scheduled, so a stuck clock cannot park it forever.
constexpr long kMaxPollMs = 1000;
// Turns gathered for one commit while input keeps coming (each takes up to max_batch messages
// from every socket): past this, the gathered turns are committed even though input waits.
constexpr uint32_t kMaxGatheredTurns = 8;
// The agent socket's high-water marks, per connection, in messages (see Init).
constexpr int kAgentSendHwm = 256;
constexpr int kAgentReceiveHwm = 32;
// Requests a turn handles between looks at whether the batch being logged became durable
// (Node::ReleaseDurable).
constexpr size_t kReleaseEveryRequests = 32;
// With a backlog, how soon the loop tries ZeroMQ's queues again.
constexpr int64_t kBacklogRetryMs = 2;

}  // namespace

Status ValidateNodeOptions(const NodeOptions& o) {
  HANDOFF_RETURN_IF_ERROR(ValidateNodeName(o.name));
  HANDOFF_RETURN_IF_ERROR(net::ValidateEndpoint(o.agent_endpoint));
  if (!o.peer_endpoint.empty()) HANDOFF_RETURN_IF_ERROR(net::ValidateEndpoint(o.peer_endpoint));
  if (o.data_dir.empty()) return Status::InvalidArgument("data_dir must not be empty");
  if (!o.agent_socket_group.empty()) {
    if (!net::IsIpc(o.agent_endpoint)) {
      return Status::InvalidArgument(
          "agent_socket_group applies to an ipc:// agent_endpoint only (a tcp:// one is open to "
          "every user of the host)");
    }
    HANDOFF_RETURN_IF_ERROR(net::LookUpGroup(o.agent_socket_group).status());
  }
  HANDOFF_RETURN_IF_ERROR(storage::CheckMapSize(o.map_size));
  if (o.max_payload_bytes < 1024 || o.max_payload_bytes > (uint64_t{64} << 20)) {
    return Status::InvalidArgument("max_payload_bytes must be between 1KiB and 64MiB");
  }
  if (o.max_batch == 0) return Status::InvalidArgument("max_batch must be at least 1");
  if (o.busy_poll_us > kMaxBusyPollUs) {
    return Status::InvalidArgument("busy_poll_us must be at most " +
                                   std::to_string(kMaxBusyPollUs));
  }
  if (o.default_lease_ms < kMinLeaseMs || o.default_lease_ms > kMaxLeaseMs) {
    return Status::InvalidArgument("default_lease must be between 100ms and 24h");
  }
  for (const PeerOptions& peer : o.peers) {
    HANDOFF_RETURN_IF_ERROR(ValidateNodeName(peer.name));
    HANDOFF_RETURN_IF_ERROR(net::ValidateEndpoint(peer.endpoint));
    if (peer.name == o.name) return Status::InvalidArgument("a peer has this node's own name");
  }
  return Status::OK();
}

Node::Node(const NodeOptions& options)
    : options_(options),
      context_(1),
      backlog_(options.max_client_backlog, options.max_total_client_backlog) {}

Node::~Node() {
  metrics_.reset();    // its threads may still write to the wake pipe
  committer_.reset();  // joins its thread (it may still write to the wake pipe)
  links_.clear();
  peers_in_monitor_.reset();  // before the socket it watches
  peers_in_.reset();
  zap_.reset();
  if (agents_) {
    agents_.reset();
    net::RemoveIpcSocket(options_.agent_endpoint);
  }
  if (streams_) {
    const std::string path = streams_->path();
    streams_.reset();
    net::RemoveIpcSocket("ipc://" + path);
  }
  if (wake_read_fd_ >= 0) ::close(wake_read_fd_);
  if (wake_write_fd_ >= 0) ::close(wake_write_fd_);
}

Result<std::unique_ptr<Node>> Node::Open(const NodeOptions& options) {
  HANDOFF_RETURN_IF_ERROR(ValidateNodeOptions(options));
  std::unique_ptr<Node> node(new Node(options));
  HANDOFF_RETURN_IF_ERROR(node->Init());
  return node;
}

Status Node::Init() {
  HANDOFF_ASSIGN_OR_RETURN(lock_, storage::DirLock::Acquire(options_.data_dir));
  storage::EnvOptions env;
  env.map_size = options_.map_size;
  env.sync = options_.fsync;
  HANDOFF_ASSIGN_OR_RETURN(store_, storage::Store::Open(options_.data_dir, env, options_.name));

  EngineOptions engine;
  engine.node_name = options_.name;
  engine.default_lease_ms = options_.default_lease_ms;
  engine.max_payload_bytes = options_.max_payload_bytes;
  engine.routes = options_.routes;
  engine.max_attempts = options_.max_attempts;
  engine.retry_initial_ms = options_.retry_initial_ms;
  engine.retry_multiplier = options_.retry_multiplier;
  engine.retry_max_ms = options_.retry_max_ms;
  engine.idempotency_ttl_ms = options_.idempotency_ttl_ms;
  engine.retention_ms = options_.retention_ms;
  engine.update_delay_ms = options_.update_delay_ms;
  engine_ = std::make_unique<Engine>(*store_, *options_.clock, engine);
  HANDOFF_RETURN_IF_ERROR(engine_->Recover());
  peer_service_ = std::make_unique<PeerService>(*engine_, *store_);

  info_.name = options_.name;
  info_.agent_endpoint = options_.agent_endpoint;
  info_.peer_endpoint = options_.peer_endpoint;
  info_.data_dir = options_.data_dir;
  info_.fsync = options_.fsync;
  info_.map_size = options_.map_size;
  info_.started_at_ms = options_.clock->NowMs();
  info_.pid = static_cast<int>(::getpid());
  info_.receiver_timeout_ms = options_.receiver_timeout_ms;
  service_ =
      std::make_unique<AgentService>(*engine_, receivers_, waiters_, info_, stats_, store_->env());
  service_->set_peer_status([this](MsgWriter& w) { WritePeerStatus(w); });

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::IOError(std::string("pipe2: ") + std::strerror(errno));
  }
  wake_read_fd_ = fds[0];
  wake_write_fd_ = fds[1];
  // What another thread calls to wake the loop: a byte in the pipe it polls.
  auto wake = [fd = wake_write_fd_] {
    char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);  // a full pipe wakes the loop anyway
  };
  committer_ = std::make_unique<storage::Committer>(
      *store_, wake, std::chrono::microseconds(options_.busy_poll_us));

  std::optional<gid_t> socket_group;
  if (!options_.agent_socket_group.empty()) {
    HANDOFF_ASSIGN_OR_RETURN(socket_group, net::LookUpGroup(options_.agent_socket_group));
  }
  HANDOFF_RETURN_IF_ERROR(net::PrepareIpcBind(options_.agent_endpoint, socket_group));
  net::SocketOptions socket;
  // A request carries at most one payload, checkpoint or result: room for it twice over, so
  // that one a little too large gets a clear error reply rather than a dropped connection.
  socket.max_message_bytes = static_cast<int64_t>(2 * options_.max_payload_bytes + (1 << 20));
  // Per connection, in messages: ZeroMQ holds at most this many unread replies (more wait in
  // the Backlog, bounded in bytes) and this many requests not yet taken by the loop (more
  // stay in the client, which is slowed).
  socket.send_hwm = kAgentSendHwm;
  socket.receive_hwm = kAgentReceiveHwm;
  // The stream socket first: a client that finds the agent socket finds it too.
  HANDOFF_RETURN_IF_ERROR(OpenStreams(socket_group, static_cast<size_t>(socket.max_message_bytes)));
  HANDOFF_ASSIGN_OR_RETURN(agents_, net::Router::Bind(context_, options_.agent_endpoint, socket));
  HANDOFF_RETURN_IF_ERROR(net::RestrictIpcSocket(options_.agent_endpoint, socket_group));
  HANDOFF_RETURN_IF_ERROR(OpenPeers());
  if (!options_.metrics_endpoint.empty()) {
    HANDOFF_ASSIGN_OR_RETURN(metrics_, MetricsServer::Start(options_.metrics_endpoint, wake));
    spdlog::info("serving Prometheus metrics at http://{}/metrics", options_.metrics_endpoint);
  }

  const auto& counts = engine_->status_counts();
  int64_t live = 0;
  for (int i = 0; i < kIntentStatusCount; ++i) {
    if (!IsTerminal(static_cast<IntentStatus>(i))) live += counts[i];
  }
  spdlog::info(
      "handoffd {} node={} data_dir={} agent_endpoint={} peer_endpoint={} peers={} fsync={}: "
      "recovered {} live intents ({} leased, re-armed for a full lease)",
      HANDOFF_VERSION, options_.name, options_.data_dir, options_.agent_endpoint,
      options_.peer_endpoint.empty() ? "none" : options_.peer_endpoint, links_.size(),
      options_.fsync ? "on" : "off", live, engine_->lease_count());
  for (const auto& [address, pause] : engine_->paused()) {
    spdlog::warn(
        "{} is paused (by {} at {}{}{}): nothing is delivered to it until `handoffctl "
        "resume {}`",
        address, pause.actor, FormatRfc3339(pause.at_ms), pause.reason.empty() ? "" : ": ",
        pause.reason, address);
  }
  return Status::OK();
}

void Node::Stop() {
  stop_.store(true);
  char byte = 1;
  // Async-signal-safe; a full pipe already wakes the loop, so the result does not matter.
  [[maybe_unused]] ssize_t n = ::write(wake_write_fd_, &byte, 1);
}

Status Node::Run() {
  std::vector<zmq::pollitem_t> items = {{nullptr, wake_read_fd_, ZMQ_POLLIN, 0},
                                        {agents_->socket().handle(), 0, ZMQ_POLLIN, 0}};
  if (streams_) items.push_back({nullptr, streams_->fd(), ZMQ_POLLIN, 0});
  if (peers_in_) items.push_back({peers_in_->socket().handle(), 0, ZMQ_POLLIN, 0});
  for (const auto& link : links_)
    items.push_back({link->dealer().socket().handle(), 0, ZMQ_POLLIN, 0});

  Inbound in;
  while (!stop_.load()) {
    // With turns gathered and the Committer idle, only look whether more input is waiting:
    // the gathered turns are committed once the sockets are quiet (or the batch is full), so
    // a busy node commits big batches and an idle one commits at once.
    const bool gathering = next_ != nullptr && !committer_->busy();
    int ready = 0;
    try {
      ready = Poll(items, gathering ? 0 : NextTimeoutMs());
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return net::ZmqStatus(e, "polling");
    }
    if (items[0].revents & ZMQ_POLLIN) {
      char buf[64];
      while (::read(wake_read_fd_, buf, sizeof(buf)) > 0) {
      }
    }
    if (stop_.load()) break;
    if (streams_) {
      if (streams_->pending()) ++ready;  // frames read in an earlier pass wait to be taken
      ForgetClosedStreams();
    }
    if (!backlog_.empty()) {
      backlog_.Flush([this](const Outgoing& m) { return SendToAgent(m); });
      stats_.backlog_bytes = backlog_.total_bytes();
    }
    OnReport(committer_->Take());
    DropSilentReceivers();
    if (loop_hook_) {
      const int64_t now = options_.clock->NowMs();
      if (now >= next_loop_hook_ms_) {
        next_loop_hook_ms_ = now + loop_hook_every_ms_;
        loop_hook_();
      }
    }
    if (metrics_ && metrics_->wanted()) metrics_->Publish(RenderMetrics());
    if (!committer_->busy() && gathering &&
        (ready == 0 || next_->turns >= kMaxGatheredTurns ||
         next_->requests.size() + next_->reads.size() >= options_.max_batch)) {
      MaybeStartCommit();
    }
    in = Inbound();
    Drain(&in);
    Turn(in);
  }
  FinishCommits(true);  // what was accepted before the stop is stored and answered
  spdlog::info("handoffd {} stopping: {} waits and {} receivers dropped (clients retry)",
               options_.name, waiters_.size(), receivers_.size());
  return Status::OK();
}

int Node::Poll(std::vector<zmq::pollitem_t>& items, long timeout_ms) {
  if (timeout_ms > 0 && options_.busy_poll_us > 0 && committer_->busy()) {
    // The commit's outcome comes within a flush; put to sleep, this thread would take longer
    // than that to wake. Each look yields the core, so that the Committer, ZeroMQ's threads
    // and the agents on the same core go first.
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::microseconds(options_.busy_poll_us);
    do {
      const int ready = zmq::poll(items.data(), items.size(), std::chrono::milliseconds(0));
      if (ready > 0) return ready;
      ::sched_yield();
    } while (std::chrono::steady_clock::now() < until);
  }
  return zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
}

long Node::NextTimeoutMs() const {
  if (HasDeliverableWork() || !undelivered_.empty() || !reread_.empty()) return 0;
  if (streams_ && streams_->pending()) return 0;
  const int64_t now = options_.clock->NowMs();
  int64_t next = now + kMaxPollMs;
  // ZeroMQ does not say when a connection's queue has room again: look soon.
  if (!backlog_.empty()) next = now + kBacklogRetryMs;
  if (auto lease = engine_->NextLeaseExpiry()) next = std::min(next, *lease);
  if (auto wait = waiters_.NextDeadline()) next = std::min(next, *wait);
  if (auto timer = engine_->NextTimer()) next = std::min(next, *timer);
  for (const auto& link : links_) next = std::min(next, link->NextWakeMs(now));
  if (loop_hook_) next = std::min(next, next_loop_hook_ms_);
  return static_cast<long>(std::clamp<int64_t>(next - now, 0, kMaxPollMs));
}

bool Node::HasDeliverableWork() const {
  const auto& ready = engine_->ready_addresses();
  if (ready.empty()) return false;
  for (const auto& [id, r] : receivers_.all()) {
    if (r.has_room() && ready.count(r.address) && !engine_->IsPaused(r.address)) return true;
  }
  return false;
}

void Node::Turn(Inbound& in) {
  if (!reread_.empty()) {
    // Reads whose turn failed go first: they have waited longest.
    in.agents.insert(in.agents.begin(), std::make_move_iterator(reread_.begin()),
                     std::make_move_iterator(reread_.end()));
    reread_.clear();
  }
  struct Parsed {
    Incoming* in;
    std::string_view bytes;  // the request's own bytes: all of in->frame unless it is batched
    wire::Request request;
  };
  std::vector<Parsed> requests;
  requests.reserve(in.agents.size());
  uint64_t writes = 0;
  for (Incoming& agent : in.agents) {
    auto decoded = wire::DecodeRequests(agent.frame.to_string_view());
    if (!decoded.ok()) {  // a batch that cannot be split: none of it is handled
      Reject(agent.routing_id, 0, decoded.status());
      continue;
    }
    for (wire::FrameRequest& each : *decoded) {
      if (!each.request.ok()) {
        Reject(agent.routing_id, each.rid, each.request.status());
        continue;
      }
      if (AgentService::MayWrite(each.request->op)) ++writes;
      requests.push_back({&agent, each.bytes, std::move(each.request).value()});
    }
  }
  bool peer_work = !in.peer_data.empty() || !in.pinged.empty();
  bool trims = false;
  const int64_t now = options_.clock->NowMs();
  for (const auto& link : links_) trims = trims || link->TrimDue(now);
  const bool write = writes > 0 || !in.peer_data.empty() || trims || engine_->LeaseExpiryDue() ||
                     engine_->TimerDue() || HasDeliverableWork() || !undelivered_.empty();
  const bool idle = logging_ == nullptr && next_ == nullptr;
  const auto next_wait = waiters_.NextDeadline();
  const bool waits_expired = next_wait && *next_wait <= now;
  if (requests.empty() && !write && !peer_work && (idle || !waits_expired)) {
    // Nothing to store; at most waits that timed out to answer, and with nothing pending the
    // store holds exactly what they may be told.
    if (waits_expired) {
      auto txn = BeginView();
      if (txn.ok()) AnswerWaiters(*txn, Batch(), nullptr);
    }
    for (const auto& link : links_)
      link->Pump(
          *store_, [this] { return BeginView(); }, now);
    return;
  }

  if (next_ == nullptr) next_ = std::make_unique<Pending>();
  std::array<const storage::WriteSet*, Txn::kMaxBelow> below;
  const size_t layers = Below(&below);
  auto txn = Txn::BeginLayered(store_->env(), &next_->writes,
                               std::span<const storage::WriteSet* const>(below.data(), layers));
  if (!txn.ok()) {
    spdlog::error("cannot begin a transaction: {}", txn.status().ToString());
    for (const Parsed& p : requests) Reject(p.in->routing_id, p.request.rid, txn.status());
    return;
  }
  if (write) CheckSpace(*txn);
  Held turn;
  Batch& batch = turn.batch;
  turn.replies.reserve(requests.size());
  turn.requests.reserve(requests.size());
  size_t handled = 0;
  for (const Parsed& p : requests) {
    if (++handled % kReleaseEveryRequests == 0) ReleaseDurable();
    // A connection that leaves more unread than its budget (queued and held replies alike)
    // is not served until it reads: checked per request, so one turn cannot overshoot.
    if (Backlogged(p.in->routing_id)) continue;
    if (AgentService::IsPureRead(p.request.op)) {
      // Decoded into its own zone: the frame is kept only to ask it again if the turn fails
      // (a batched read's own bytes, copied: the batch's other requests are not asked again).
      zmq::message_t frame = p.bytes.size() == p.in->frame.size()
                                 ? std::move(p.in->frame)
                                 : zmq::message_t(p.bytes.data(), p.bytes.size());
      turn.reads.push_back({p.in->routing_id, std::move(frame), p.in->failed_turns});
    } else {
      turn.requests.emplace_back(p.in->routing_id, p.request.rid);
    }
    std::optional<std::string> reply = service_->Handle(*txn, batch, p.in->routing_id, p.request);
    if (reply) {
      backlog_.Hold(p.in->routing_id, reply->size());
      turn.replies.push_back({p.in->routing_id, std::move(*reply), {}, p.request.version >= 2});
    }
  }

  turn.send_waits = service_->TakeSendWaits();
  Status s = ApplyPeers(*txn, batch, in, &turn.acks);
  if (write) {
    for (const auto& [id, attempt] : undelivered_) {
      if (s.ok()) s = engine_->ReturnUndelivered(*txn, batch, id, attempt);
    }
    if (s.ok()) s = engine_->FireTimers(*txn, batch, options_.max_batch).status();
    if (s.ok()) s = engine_->ExpireLeases(*txn, batch, options_.max_batch).status();
    if (s.ok()) s = Deliver(*txn, batch, &turn.pushes, &turn.assigned);
    if (s.ok()) s = engine_->Flush(*txn, batch);
  }
  if (!s.ok()) {
    txn->Abort();
    ++stats_.failed_commits;
    if (s.IsResourceExhausted()) {
      last_space_check_ms_ = 0;  // the estimate fell short: count again at the next turn
      free_bytes_ = 0;
    }
    // Its writes are mixed with those of the turns gathered since the last commit began:
    // they fail together.
    std::unique_ptr<Pending> gathered = std::move(next_);
    spdlog::error("a turn failed and nothing of it was stored; {} request(s) refused: {}{}",
                  requests.size() + gathered->requests.size(), s.ToString(),
                  s.IsResourceExhausted() || s.IsIOError()
                      ? " (check free disk space and [node] map_size)"
                      : "");
    for (const IntentId& id : turn.assigned) receivers_.Release(id);
    for (const Waiter& w : turn.send_waits) waiters_.Remove(w);
    const Status not_stored = NotStoredBecause(s);
    FailPending(*gathered, not_stored);
    // The in-memory state holds the batch being logged too: let it finish, then rebuild the
    // state from the store.
    FinishCommits(false);
    RebuildState();
    Unhold(turn.replies);
    for (const auto& [routing_id, rid] : turn.requests) {
      SendAll({Outgoing{routing_id, wire::EncodeErrorReply(rid, not_stored), {}, false}});
    }
    Reread(std::move(turn.reads), not_stored);
    return;  // peers are not acknowledged: they send it again
  }
  if (write) engine_->Commit(batch);  // the in-memory state follows the layered view
  AnswerWaiters(*txn, batch, &turn);
  txn->Abort();  // ends the snapshot; the writes stay in next_->writes
  turn.undelivered = std::move(undelivered_);
  undelivered_.clear();
  turn.write_requests = writes;
  turn.turns = 1;
  next_->Absorb(std::move(turn));
}

Status Node::Deliver(Txn& txn, Batch& batch, std::vector<Outgoing>* pushes,
                     std::vector<IntentId>* assigned) {
  size_t budget = options_.max_batch;
  bool progress = true;
  while (budget > 0 && progress) {
    progress = false;
    for (Receiver* r : receivers_.WithRoom()) {
      if (budget == 0) break;
      if (!r->has_room() || engine_->ready_addresses().count(r->address) == 0 ||
          engine_->IsPaused(r->address)) {
        continue;
      }
      HANDOFF_ASSIGN_OR_RETURN(std::optional<DeliveredView> view,
                               engine_->DeliverNext(txn, batch, r->address));
      if (!view) continue;
      pushes->push_back({r->routing_id,
                         AgentService::DeliveryPush(*view),
                         {{view->record.id, view->record.delivery_attempt}},
                         r->batch});
      receivers_.Assign(r->routing_id, r->address, view->record.id);
      assigned->push_back(view->record.id);
      progress = true;
      --budget;
    }
  }
  return Status::OK();
}

void Node::AnswerWaiters(const Txn& txn, const Batch& batch, Held* out) {
  std::vector<Waiter> ready;
  for (const IntentId& id : batch.settled) {
    for (Waiter& w : waiters_.TakeFor(id)) ready.push_back(std::move(w));
  }
  for (Waiter& w : waiters_.TakeExpired(options_.clock->NowMs())) ready.push_back(std::move(w));
  if (ready.empty()) return;
  std::vector<Outgoing> replies;
  for (const Waiter& w : ready) {
    replies.push_back({w.routing_id, service_->WaitReply(txn, w), {}, w.batch});
  }
  if (out == nullptr) {
    SendAll(std::move(replies));
    return;
  }
  out->answers.insert(out->answers.end(), std::make_move_iterator(replies.begin()),
                      std::make_move_iterator(replies.end()));
  out->answered.insert(out->answered.end(), std::make_move_iterator(ready.begin()),
                       std::make_move_iterator(ready.end()));
}

}  // namespace handoff::node
