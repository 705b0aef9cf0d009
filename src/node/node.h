// Node: one running handoffd. Owns the data directory, the Engine, the agent socket and the
// peer links, and runs the loop that ties them together.
//
// The loop (one thread) repeats a turn: wait for requests, peer messages or the next timer;
// take everything that is ready (at most max_batch per socket); apply it all, expired leases
// and new deliveries to a write set layered over the store (storage/write_set.h). What the
// turn must say (replies, deliveries, peer acknowledgements, answered waits) is held back with
// its writes. The Committer thread makes the held turns' writes durable as ONE batch (one
// append to the write-ahead log, one flush) while the loop goes on with the next turns; when
// the batch is durable the loop sends everything those turns held, and hands the turns
// gathered meanwhile to the Committer. Durability therefore costs one flush per batch of
// turns however many intents they carried (group commit), the flush overlaps the work of the
// next batch, and no client or peer ever hears of a change that is not on disk. A durable
// batch stays one of the loop's layers until the Committer has applied it to LMDB, a few
// batches at a time (storage/committer.h). If a batch fails, nothing it (or any turn after
// it) held is sent: those requests get the error, and the in-memory state is rebuilt from the
// store.
//
// Thread safety: Run() on one thread; Stop() from any thread or a signal handler. The
// Committer's thread only touches the store and the wake pipe.

#ifndef HANDOFF_NODE_NODE_H_
#define HANDOFF_NODE_NODE_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "handoff/status.h"
#include "net/curve_keys.h"
#include "net/sockets.h"
#include "net/stream.h"
#include "net/zap.h"
#include "node/agent_service.h"
#include "node/backlog.h"
#include "node/engine.h"
#include "node/metrics.h"
#include "node/options.h"
#include "node/peer_link.h"
#include "node/peer_service.h"
#include "node/receivers.h"
#include "node/waiters.h"
#include "storage/committer.h"
#include "storage/dir_lock.h"
#include "storage/store.h"
#include "storage/write_set.h"

namespace handoff::node {

// The checks Node::Open makes of its options before it touches anything (names, endpoints,
// sizes against what this machine allows): `handoffd --check-config` runs them too.
Status ValidateNodeOptions(const NodeOptions& options);

class Node {
 public:
  // Validates the options, locks and opens the data directory, recovers in-memory state and
  // binds the endpoints. Nothing is served until Run().
  static Result<std::unique_ptr<Node>> Open(const NodeOptions& options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Serves until Stop(). Returns OK after a clean stop.
  Status Run();
  // Asks Run() to return after the current turn. Async-signal-safe.
  void Stop();
  // Calls `hook` from the loop thread every `every_ms` while the loop runs (before Run): a
  // service manager's watchdog, which a loop that stopped turning no longer feeds.
  void SetLoopHook(std::function<void()> hook, int64_t every_ms) {
    loop_hook_ = std::move(hook);
    loop_hook_every_ms_ = std::max<int64_t>(every_ms, 1);
  }

  const NodeOptions& options() const { return options_; }

 private:
  struct Incoming {
    std::string routing_id;
    zmq::message_t frame;
    uint32_t failed_turns = 0;  // a pure read asked again after its turn failed
  };
  // What turns may only do once their writes are durable.
  struct Held {
    Batch batch;
    std::vector<Outgoing> replies;  // sent in this order: replies, deliveries, answered waits
    std::vector<Outgoing> pushes;
    std::vector<Outgoing> answers;
    std::vector<Waiter> answered;    // parked again if the commit fails
    std::vector<Waiter> send_waits;  // parked by sends with a wait_rid: taken back if it fails
    std::vector<IntentId> assigned;
    std::map<std::string, uint64_t> acks;                    // peer -> last link seq applied
    std::vector<std::pair<std::string, uint64_t>> requests;  // (connection, rid): for errors
    std::vector<Incoming> reads;  // pure reads, asked again if it fails (RetryReads)
    std::vector<std::pair<IntentId, uint32_t>> undelivered;  // returned: again if it fails
    uint64_t write_requests = 0;
    uint32_t turns = 0;
    // Appends a later turn's.
    void Absorb(Held&& later);
  };
  // Turns whose writes are not durable yet: the writes of all of them in one set (a turn adds
  // to the set its predecessors gathered, so a turn that fails fails them too).
  struct Pending : Held {
    storage::WriteSet writes;
  };
  // What one turn took off the sockets.
  struct Inbound {
    std::vector<Incoming> agents;
    std::vector<wire::PeerMessage> peer_data;  // in arrival order
    std::set<std::string> pinged;              // peers that asked where we are
  };

  explicit Node(const NodeOptions& options);
  Status Init();
  Status OpenPeers();

  // Milliseconds until the next timer needs the loop (0: work is ready now).
  long NextTimeoutMs() const;
  // zmq::poll on `items` for up to `timeout_ms`; while a commit runs, busy-polls first for up to
  // busy_poll_us (NodeOptions). Returns how many items are ready; throws as zmq::poll does.
  int Poll(std::vector<zmq::pollitem_t>& items, long timeout_ms);
  bool HasDeliverableWork() const;
  // Takes what is queued on every socket (at most max_batch from each ROUTER).
  void Drain(Inbound* in);
  void DrainPeers(Inbound* in);
  // One turn: apply `in`, due timers and deliveries over the pending writes, and hold what it
  // must say until they are durable.
  void Turn(Inbound& in);
  // Hands the gathered turns to the Committer when it is idle; sends at once what a batch
  // without writes held.
  void MaybeStartCommit();
  // Acts on what the Committer reported: OnCommitted for the batch it made durable (or
  // failed), then drops the layers of the batches it applied to LMDB.
  void OnReport(storage::Committer::Report report);
  // In the middle of a turn: if the batch being logged is durable, sends what it held at once
  // (a long turn would otherwise hold its replies back until it ends, and the agents' next
  // requests with them).
  void ReleaseDurable();
  // The Committer finished `logging_` with `s`: send what it held, or fail it and every
  // turn after it.
  void OnCommitted(const Status& s);
  // The write sets under the gathering turns, newest first: the batch being logged, then the
  // durable ones not yet in LMDB. Returns how many it put in `below`.
  size_t Below(std::array<const storage::WriteSet*, Txn::kMaxBelow>* below) const;
  // A read of the store as the loop sees it: LMDB with every batch not yet in it on top.
  Result<Txn> BeginView() const;
  // After a failure: rebuilds the Engine's in-memory state from the view.
  void RebuildState();
  // Sends what a durable batch held (its messages are moved out): replies, deliveries,
  // answered waits, peer acks.
  void SendHeld(Held& held);
  // Waits until every pending turn is durable (or failed) and, with `drain`, applied to LMDB.
  void FinishCommits(bool drain);
  // Answers a failed batch's requests with `why` and undoes its in-memory holds.
  void FailPending(Held& p, const Status& why);
  // Queues pure reads whose turn failed for the next turn (each at most a few times, then it
  // gets `why`).
  void Reread(std::vector<Incoming>&& reads, const Status& why);
  // What a request in a failed turn or batch is told: not_stored with the cause (or, for a
  // full map, resource_exhausted).
  static Status NotStoredBecause(const Status& cause);
  // Bytes the pending write sets will add to the store, at most.
  uint64_t PendingBytes() const;
  // Admission control: sets the room for new sends this turn to what the map has left after
  // the live data (high-water mark minus free pages), a margin (5% of map_size, at least
  // 256 KiB) and the space every live intent may still need to finish. What was accepted
  // always has room to complete; only new sends are refused.
  void CheckSpace(const Txn& txn);
  // Leases queued intents to receivers with room; the pushes go out after commit.
  Status Deliver(Txn& txn, Batch& batch, std::vector<Outgoing>* pushes,
                 std::vector<IntentId>* assigned);
  // Applies peer data messages and trims acknowledged outbox entries; fills `acks` with what to
  // acknowledge to each peer.
  Status ApplyPeers(Txn& txn, Batch& batch, const Inbound& in,
                    std::map<std::string, uint64_t>* acks);
  // After a commit: tells each link what it wrote to the outbox, acknowledges the peers, and
  // lets every link send what is due.
  void AfterPeers(const Batch& batch, const std::map<std::string, uint64_t>& acks);
  // Answers parked waits whose intent ended in `batch` or whose time ran out, reading through
  // `txn`: into `out` (sent later) when given, else at once.
  void AnswerWaiters(const Txn& txn, const Batch& batch, Held* out);
  // Sends messages to agent connections, in order per connection; a connection's consecutive
  // messages that may be batched go as batches (Coalesce).
  void SendAll(std::vector<Outgoing> messages);
  // Joins each run of consecutive messages to one connection that reads batches into one
  // batch (at most wire::kSendBatchItems messages and kMaxBatchBytes), keeping every
  // connection's order.
  static std::vector<Outgoing> Coalesce(std::vector<Outgoing> messages);
  // Replies held by a turn until its batch is durable, sent or dropped now: no longer counted
  // against their connections' budgets (Backlog::Hold).
  void Unhold(const std::vector<Outgoing>& replies);
  // Hands one message to the agent socket: taken, or full (Backlog keeps it).
  Backlog::Sent SendToAgent(const Outgoing& m);
  // True (and counted, and logged now and then) when a request from `routing_id` must wait:
  // the connection leaves more unread than its backlog budget.
  bool Backlogged(const std::string& routing_id);
  // Forgets receiving connections silent for longer than receiver_timeout (once a second).
  void DropSilentReceivers();
  // Binds the stream socket beside the agent socket, when [node] agent_stream asks for one.
  Status OpenStreams(std::optional<gid_t> socket_group, size_t max_frame_bytes);
  // Forgets the receivers of stream connections that closed (what they held keeps its lease).
  void ForgetClosedStreams();
  void Reject(const std::string& routing_id, uint64_t rid, const Status& status);
  void WritePeerStatus(MsgWriter& w) const;
  // How long the oldest message for `link` has waited unacknowledged; nullopt when none does
  // (or the outbox cannot be read). `status` and the metrics show it.
  std::optional<int64_t> OldestPendingAgeMs(const Result<Txn>& view, const PeerLink& link,
                                            int64_t now) const;
  // The Prometheus exposition (node_metrics.cc; docs/operations.md lists the metrics).
  std::string RenderMetrics() const;
  // Loads (or creates) this node's key pair and starts the ZAP handler that admits the peers'
  // keys, when peer_security is curve; warns loudly when it is none.
  Status OpenPeerSecurity();
  // Checks who sent a message on the peer ROUTER: the authenticated name (CURVE) or the
  // configured peer it claims to be (none), which its routing id, if it chose one, and its
  // `from` must match. Logs, counts and returns false for anything else.
  bool Admit(const net::RoutedMessage& routed, const wire::PeerMessage& msg);
  // Reads the peer ROUTER's monitor and every link's: handshake failures, counted.
  void PollHandshakes(int64_t now);
  // Logs a refusal on the peer port unless one with the same `key` was logged within the
  // last minute (bounded: a flood logs a line a minute, not a line a message).
  bool ShouldLogRefusal(const std::string& key, int64_t now);

  NodeOptions options_;
  uint64_t boot_ = 0;  // random per run: lets peers recognise a restart
  NodeInfo info_;
  NodeStats stats_;
  std::unique_ptr<storage::DirLock> lock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Engine> engine_;
  ReceiverSet receivers_;
  WaiterSet waiters_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<PeerService> peer_service_;
  zmq::context_t context_;
  std::unique_ptr<net::Router> agents_;
  // Beside agents_, the same protocol on a stream socket the loop serves itself ([node]
  // agent_stream); null without one.
  std::unique_ptr<net::StreamServer> streams_;
  Backlog backlog_;                        // for agents_ and streams_
  std::optional<net::CurveKeyPair> keys_;  // this node's, when peer_security is curve
  std::unique_ptr<net::ZapHandler> zap_;   // admits the peers' keys; before peers_in_ binds
  std::unique_ptr<net::Router> peers_in_;  // null without peer_endpoint
  std::unique_ptr<net::SocketMonitor> peers_in_monitor_;  // destroyed before peers_in_
  std::vector<std::unique_ptr<PeerLink>> links_;
  // Per peer name: the ROUTER connection its latest accepted message came on (where acks go),
  // and messages refused because the connection was not who they claimed to be.
  std::map<std::string, std::string> peer_routes_;
  std::map<std::string, uint64_t> impostor_messages_;  // by the authenticated name
  uint64_t handshake_failures_ = 0;  // CURVE or ZMTP handshakes failed on the peer port
  std::map<std::string, int64_t> refusal_logged_;  // ShouldLogRefusal's memory
  std::unique_ptr<MetricsServer> metrics_;         // null without metrics_endpoint
  // Per durable batch: its commit (apply + log append + flush), its flush alone, its requests.
  Histogram commit_seconds_{
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  Histogram fsync_seconds_{
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}};
  Histogram batch_size_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}};
  std::unique_ptr<storage::Committer> committer_;
  std::unique_ptr<Pending> logging_;  // handed to the Committer
  std::unique_ptr<Pending> next_;     // turns since, for the next batch
  // Durable batches whose writes the Committer has not applied to LMDB yet, oldest first:
  // the loop reads through their write sets.
  std::deque<std::unique_ptr<Pending>> unapplied_;
  // Deliveries whose push failed: returned to the queue at the next turn.
  std::vector<std::pair<IntentId, uint32_t>> undelivered_;
  // Pure reads whose turn failed, answered by the next turn from what is stored.
  std::vector<Incoming> reread_;
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  std::atomic<bool> stop_{false};

  // Rejected input since the last warning, so a flood logs one line per period.
  uint64_t rejected_ = 0;
  int64_t last_reject_log_ms_ = 0;
  uint64_t backlogged_ = 0;  // requests dropped since the last warning
  int64_t last_backlog_log_ms_ = 0;
  int64_t next_receiver_sweep_ms_ = 0;  // when DropSilentReceivers looks again
  std::function<void()> loop_hook_;     // SetLoopHook
  int64_t loop_hook_every_ms_ = 0;
  int64_t next_loop_hook_ms_ = 0;
  int64_t last_space_check_ms_ = 0;
  bool nearly_full_warned_ = false;  // CheckSpace said the store is nearing its map_size
  uint64_t free_bytes_ = 0;          // free pages below the high-water mark at the last count
  bool refusing_sends_ = false;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_NODE_H_
