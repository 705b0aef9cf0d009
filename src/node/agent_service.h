// AgentService: the agent protocol's operations, from a decoded request to a reply.
//
// Handle() runs one request inside the loop's current transaction and returns the reply to send
// once that transaction commits; it never touches a socket. `wait` may return no reply: the
// request is parked in the WaiterSet and answered later by the Node.
//
// Thread safety: none; called from the loop thread only.

#ifndef HANDOFF_NODE_AGENT_SERVICE_H_
#define HANDOFF_NODE_AGENT_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "node/engine.h"
#include "node/receivers.h"
#include "node/waiters.h"
#include "wire/agent_protocol.h"

namespace handoff::node {

// What `status` reports about the node itself.
struct NodeInfo {
  std::string name;
  std::string agent_endpoint;
  std::string agent_stream;  // the stream socket's path; empty without one
  std::string peer_endpoint;
  std::string data_dir;
  bool fsync = true;
  uint64_t map_size = 0;
  int64_t started_at_ms = 0;
  int pid = 0;
  int64_t receiver_timeout_ms = 0;  // [node] receiver_timeout
};

// Counters of the loop's work, reported by `status`.
struct NodeStats {
  uint64_t commits = 0;         // batches made durable (one log append and flush each)
  uint64_t writes = 0;          // write requests those batches carried
  uint64_t deliveries = 0;      // intents pushed to agents
  uint64_t rejected = 0;        // requests refused before reaching the engine
  uint64_t lmdb_commits = 0;    // LMDB transactions those batches were applied in
  uint64_t log_bytes = 0;       // of those batches' write-ahead log records
  uint64_t failed_commits = 0;  // turns whose commit failed (disk full, I/O error)
  // Requests dropped unread because their connection left too much unread (Backlog), and
  // the bytes waiting for agent connections now.
  uint64_t backlog_dropped = 0;
  uint64_t backlog_bytes = 0;
  uint64_t purged = 0;        // ended intents deleted (retention or purge)
  uint64_t space_in_use = 0;  // bytes of live data in the map at the last check
  // Time the Committer took for the batches that succeeded: applying their writes to LMDB's
  // open transaction plus the log's append and flush, in microseconds; total and the slowest.
  uint64_t commit_us_total = 0;
  uint64_t commit_us_max = 0;
};

// Space a new intent is charged against the store's room when it is sent, on top of its
// payload: its record, events and index entries through to the end, a modest result, and
// LMDB's page overhead. Sends stop while the room left cannot cover another.
inline constexpr uint64_t kIntentSpaceEstimate = 6 * 1024;

// Longest a single `wait` request may be parked; clients wait longer by repeating it.
inline constexpr int64_t kMaxWaitMs = 5 * 60 * 1000;
// Most intents one `list` or `events` reply carries.
inline constexpr uint64_t kMaxListLimit = 10'000;
// Most queued intents counted per address by `agents` and the metrics.
inline constexpr uint64_t kMaxQueuedCounted = 1'000'000;
// Most addresses one `agents` reply lists, and receivers one `status` reply lists.
inline constexpr size_t kMaxAgentsListed = 10'000;
inline constexpr size_t kMaxStatusReceivers = 100;
// Most intents one connection may hold at once.
inline constexpr uint64_t kMaxCredit = 100'000;

// What one local address has: its receivers, their credit and what they hold, and the latest
// word from any of them.
struct AddressSummary {
  std::vector<const Receiver*> receivers;
  uint64_t credit = 0;
  uint64_t in_flight = 0;
  int64_t last_heard_ms = 0;
  uint64_t queued = 0;  // filled by the caller (a count in the store)
};
// Every local address with receivers, a pause, or intents that may be queued (ready hints,
// which may be stale: their queued count is then 0).
std::map<std::string, AddressSummary> SummarizeAddresses(const ReceiverSet& receivers,
                                                         const Engine& engine);

class AgentService {
 public:
  // All references must outlive the service.
  AgentService(Engine& engine, ReceiverSet& receivers, WaiterSet& waiters, const NodeInfo& info,
               const NodeStats& stats, storage::Env& env);

  // True for operations that may write, so the loop opens a write transaction for them.
  static bool MayWrite(std::string_view op);
  // True for operations answered at once from what is stored, changing nothing (get, list,
  // events, audit, status, hello): one whose turn failed is simply asked again.
  static bool IsPureRead(std::string_view op);

  // The encoded reply, or nullopt when the request was parked.
  std::optional<std::string> Handle(Txn& txn, Batch& batch, const std::string& routing_id,
                                    const wire::Request& request);

  // The reply to a parked wait, once its intent ended or its time ran out.
  std::string WaitReply(const Txn& txn, const Waiter& waiter);
  static std::string EncodeWaitReply(uint64_t rid, const IntentView& view);
  static std::string EncodeWaitReply(uint64_t rid, const IntentRecord& record,
                                     std::string_view payload, std::string_view checkpoint,
                                     std::string_view result);
  // Adds the node's peer links to `status` replies.
  void set_peer_status(std::function<void(MsgWriter&)> fn) { peer_status_ = std::move(fn); }
  // Room in the store for new intents this turn, in bytes (Node::CheckSpace measures it).
  void set_send_budget(uint64_t bytes) {
    send_budget_ = bytes;
    if (bytes >= kRoomToAcceptAgain) refusing_sends_ = false;
  }
  // Whether a send now would be taken: the store has room and the disk takes writes.
  bool accepting_sends() const { return !refusing_sends_ && store_fault_.ok(); }
  // Whether the store takes writes (storage::Committer::Report::store): `status` shows it.
  void set_store_fault(Status fault) { store_fault_ = std::move(fault); }
  // A delivery push for a freshly leased intent.
  static std::string DeliveryPush(const DeliveredView& delivery);
  // The waits that sends with a `wait_rid` parked since the last call. The loop keeps them
  // with the turn, so that a batch that fails takes them back (WaiterSet::Remove): a send that
  // was not stored gets its error reply and nothing after it.
  std::vector<Waiter> TakeSendWaits() { return std::move(send_waits_); }

 private:
  // A reply to send, nullopt for a parked request, or an error to send as an error reply.
  using Reply = Result<std::optional<std::string>>;
  using Handler = Reply (AgentService::*)(Txn&, Batch&, const std::string& conn,
                                          const wire::Request&);
  static Handler Find(std::string_view op);

  Reply OnHello(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnSend(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnGet(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnEvents(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnWait(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnList(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnCancel(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnReceive(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnAck(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnHeartbeat(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnCheckpoint(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnComplete(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnFail(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnDecide(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnRequestApproval(Txn& txn, Batch& batch, const std::string& conn,
                          const wire::Request& req);
  Reply OnAudit(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnReplay(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  // Charges a new intent of `payload_bytes` against the room for sends; ResourceExhausted when
  // the room is used up.
  Status CheckRoom(size_t payload_bytes);
  Reply OnPurge(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnStatus(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnAgents(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  Reply OnPause(Txn& txn, Batch& batch, const std::string& conn, const wire::Request& req);
  // The paused addresses as an array of {address, reason, actor, at, from_node}.
  void WritePaused(MsgWriter& w) const;

  // A reply carrying the intent (with blobs) as "intent".
  Reply IntentReply(const Txn& txn, uint64_t rid, const IntentRecord& record);

  Engine& engine_;
  ReceiverSet& receivers_;
  WaiterSet& waiters_;
  std::vector<Waiter> send_waits_;  // parked by this turn's sends (TakeSendWaits)
  const NodeInfo& info_;
  const NodeStats& stats_;
  storage::Env& env_;
  std::function<void(MsgWriter&)> peer_status_;
  uint64_t refused_sends_ = 0;         // sends refused for want of space
  uint64_t send_budget_ = UINT64_MAX;  // bytes new intents may still take (set each turn)
  // The latest send was refused for want of room, and the room has not grown since.
  bool refusing_sends_ = false;
  Status store_fault_;  // OK while the disk takes writes
  static constexpr uint64_t kRoomToAcceptAgain = 64 * 1024 + kIntentSpaceEstimate;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_AGENT_SERVICE_H_
