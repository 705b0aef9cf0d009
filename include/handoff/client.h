// handoff::Client: what an agent or tool links to hand off work and follow it.
//
// A Client talks to the local handoffd over its agent endpoint (ipc:// by default) and never
// touches storage. Every call returns within a bounded time: if the daemon is not running,
// Connect fails within a second (the time a daemon that was just started has to bind its
// socket), and at once if this user may not use the socket; if it stops answering, a call retries
// for `request_timeout` and then fails with Unavailable. Calls are safe to retry: Send carries an
// intent id chosen here, so a resent request never stores a second intent.
//
//   auto client = handoff::Client::Connect({});
//   handoff::SendRequest req;
//   req.to_agent = "agent://acme/prod/processor";
//   req.intent_type = "intent.handoff.process.v1";
//   req.payload = {{"records", 120}};
//   auto receipt = (*client)->Send(req);          // returns once the intent is on disk
//   auto done = (*client)->Wait(receipt->intent_id, std::chrono::minutes(5));
//
// Thread safety: a Client is used by one thread at a time. Create one per thread.

#ifndef HANDOFF_CLIENT_H_
#define HANDOFF_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "handoff/intent.h"
#include "handoff/status.h"

namespace handoff {

struct ClientOptions {
  // The daemon's agent endpoint. Default (empty): $HANDOFF_SOCKET, else
  // ipc:///tmp/handoff-<uid>/handoffd.sock, the daemon's own default.
  std::string endpoint;
  // How long one call may take, retries included, before it fails with Unavailable.
  // Default: 10 s.
  std::chrono::milliseconds request_timeout{10'000};
  // Silence after which a request is sent again (the daemon may have restarted and lost it).
  // Default: 2 s.
  std::chrono::milliseconds resend_interval{2'000};
  // Talk to the daemon over its stream socket (the endpoint's path with ".stream" appended,
  // beside an ipc:// endpoint; [node] agent_stream) when it has one, else over ZeroMQ: the
  // same protocol, and a round trip that crosses half as many threads. false: ZeroMQ always.
  // Default: true.
  bool stream = true;
};

struct SendRequest {
  std::string to_agent;     // required: agent://<org>/<env>/<name>
  std::string intent_type;  // required: intent.<name>.v<N>
  Json payload = Json::object();
  std::string from_agent;  // default: agent://<node>/local/anonymous
  std::string correlation_id;
  std::string parent_id;
  // How long the receiving agent may hold the intent between heartbeats. 0: the node default.
  std::chrono::milliseconds lease{0};
  // An address that gets an intent.reply.v1 (original id, status, result or error) when this
  // intent ends, delivered durably like any intent.
  std::string reply_to;
  // Hold the intent for a human decision before it is delivered (WAITING, HUMAN): the question
  // and the outcomes offered (empty: approve or reject). Default: not held.
  std::optional<Approval> require_approval;
  // With from_agent, names this request: sending it again (same key, same type, recipient and
  // payload) returns the first intent's id and stores nothing; the same key with a different
  // request is refused (Conflict). Keys are remembered for the node's idempotency_ttl (24 h).
  std::string idempotency_key;
  // When the intent times out (TIMED_OUT) if it has not ended: Unix milliseconds. 0: never.
  int64_t deadline_ms = 0;
  // Deliveries it gets, lease expiries included; 0: the node default (5).
  uint32_t max_attempts = 0;
  // Backoff after a retryable failure: initial, multiplier, cap. 0: the node defaults.
  std::chrono::milliseconds retry_initial{0};
  double retry_multiplier = 0;
  std::chrono::milliseconds retry_max{0};
  // The intent id to use (a UUID). Default: a fresh UUIDv7 made by the client.
  std::string intent_id;
};

struct SendReceipt {
  std::string intent_id;
  IntentStatus status = IntentStatus::kSubmitted;
  bool created = true;  // false if an earlier send with this intent id had stored it
};

struct ListOptions {
  std::optional<IntentStatus> status;
  std::string to_agent;
  std::string from_agent;
  size_t limit = 100;  // newest first
};

class Connection;

// Whether a daemon can be reached at `endpoint` (empty: the default) now, without waiting:
// OK when one listens (or the endpoint is not ipc://, which is not probed), Unavailable when
// none does, IOError ("permission denied on ...: add this user to group ...") when the socket's
// permissions refuse this user. For agents that wait for their daemon to start.
Status ProbeDaemon(std::string_view endpoint);

class Client {
 public:
  // Fails with Unavailable at once if nothing listens on an ipc endpoint.
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Stores the intent durably (fsync'd) on the local node and returns its id.
  Result<SendReceipt> Send(const SendRequest& request);
  // The intent with its payload, latest checkpoint and result. NotFound for an unknown id.
  Result<Intent> Get(std::string_view intent_id);
  // Events with seq > `since`, oldest first.
  Result<std::vector<Event>> Events(std::string_view intent_id, uint32_t since = 0);
  // Blocks until the intent reaches a terminal status and returns it; TimedOut if `timeout`
  // passes first. Survives restarts of the daemon.
  Result<Intent> Wait(std::string_view intent_id, std::chrono::milliseconds timeout);
  // The same for one round trip of at most `timeout` (at most 5 minutes), without the
  // payload, checkpoint or result: the intent's status as soon as it ends, else its status
  // when the time is up. For agents watching a running intent for a cancel.
  Result<IntentStatus> WatchStatus(std::string_view intent_id, std::chrono::milliseconds timeout);
  // Send, then Wait, in one request: the daemon parks the wait with the send (the protocol's
  // wait_rid), so there is no second request and no gap between them. `on_stored`, if given,
  // gets the receipt as soon as the intent is on disk (before its outcome). Errors as Send's
  // before `on_stored` is called, as Wait's after it.
  Result<Intent> SendAndWait(const SendRequest& request, std::chrono::milliseconds timeout,
                             const std::function<void(const SendReceipt&)>& on_stored = nullptr);
  // Intents, newest first, without payloads, checkpoints or results.
  Result<std::vector<Intent>> List(const ListOptions& options = {});
  // Cancels a live intent; Conflict if it has already ended.
  Result<IntentStatus> Cancel(std::string_view intent_id, std::string_view reason = {},
                              std::string_view actor = {});
  // A human's decision on an intent WAITING for approval. `outcome` must be one of those
  // offered, if any were. Conflict if it is not waiting or was already decided.
  Result<IntentStatus> Approve(std::string_view intent_id, std::string_view comment = {},
                               std::string_view outcome = {}, std::string_view actor = {});
  Result<IntentStatus> Reject(std::string_view intent_id, std::string_view comment = {},
                              std::string_view actor = {});
  // Sends a new intent that repeats an ended one (same payload, addresses, correlation id),
  // linked both ways. Returns the new intent's receipt.
  Result<SendReceipt> Replay(std::string_view intent_id, std::string_view actor = {});
  // Deletes an ended intent, its payload, result and events now (dead letters included),
  // instead of after the node's retention. Conflict while it is live; NotFound if unknown.
  Status Purge(std::string_view intent_id);
  // The node-wide audit trail: every event recorded on this node after `since`, oldest first.
  Result<std::vector<AuditEntry>> Audit(uint64_t since = 0, size_t limit = 1000);
  // The daemon's own report: node, version, counts by status, receivers, ...
  Result<Json> NodeStatus();
  // Every local address with receivers, queued intents or a pause: {"agents": [{address,
  // receivers, credit, in_flight, queued, last_heard, paused, ...}], "receiver_timeout_ms"}.
  Result<Json> Agents();
  // The kill switch: no more deliveries to `address` (sends are still accepted and queue)
  // until Resume. Durable and audited; an address hosted by a peer is paused there. The reply:
  // {address, paused, changed, forwarded_to (when hosted by a peer)}.
  Result<Json> Pause(std::string_view address, std::string_view reason = {},
                     std::string_view actor = {});
  Result<Json> Resume(std::string_view address, std::string_view actor = {});

  // --- For agents and tools working on a delivered intent. `attempt` is the delivery attempt
  // the work belongs to (0: the current one). ---

  // Saves `state` as the intent's checkpoint; returns once it is on disk. Extends the lease.
  Status Checkpoint(std::string_view intent_id, uint32_t attempt, const Json& state);
  // Extends the lease. Cancelled if the intent was canceled; Conflict if the lease was lost.
  Status Heartbeat(std::string_view intent_id, uint32_t attempt);
  Status Ack(std::string_view intent_id, uint32_t attempt, bool start);
  Status Complete(std::string_view intent_id, uint32_t attempt, const Json& result);
  Status Fail(std::string_view intent_id, uint32_t attempt, const ErrorInfo& error);
  // Asks a human (the intent waits, HUMAN); the decision brings it back to an agent.
  Status RequestApproval(std::string_view intent_id, uint32_t attempt, std::string_view question,
                         const std::vector<std::string>& outcomes = {});

  const std::string& endpoint() const;
  // How this client reaches its daemon: "stream" (the daemon's stream socket) or "zeromq".
  std::string_view transport() const;

 private:
  explicit Client(std::unique_ptr<Connection> connection);
  // Send, with a wait parked for `wait_rid` (0: none) of `wait_timeout`.
  Result<SendReceipt> SendWithWait(const SendRequest& request, uint64_t wait_rid,
                                   std::chrono::milliseconds wait_timeout);
  std::unique_ptr<Connection> connection_;
};

}  // namespace handoff

#endif  // HANDOFF_CLIENT_H_
