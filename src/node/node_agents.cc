// The receiving half of Node's agent sockets: the stream socket beside the ZeroMQ one (opened
// at start-up), the requests a turn takes from both, and the receiving connections forgotten
// when they close or go silent. node_send.cc has what goes back to them.

#include <spdlog/spdlog.h>

#include "base/names.h"
#include "base/units.h"
#include "net/endpoint.h"
#include "node/node.h"

namespace handoff::node {
namespace {

// Request bytes one turn takes from the agent sockets (at least one request).
constexpr uint64_t kMaxTurnFrameBytes = uint64_t{4} << 20;
// How often receivers are checked for silence (at most once per loop pass).
constexpr int64_t kReceiverSweepMs = 1000;

}  // namespace

Status Node::OpenStreams(std::optional<gid_t> socket_group, size_t max_frame_bytes) {
  if (!options_.agent_stream || !net::IsIpc(options_.agent_endpoint)) return Status::OK();
  const std::string path = net::StreamPathFor(options_.agent_endpoint);
  if (path.empty()) {
    spdlog::warn(
        "no stream socket beside {}: its path with \"{}\" appended would be longer than {} "
        "bytes; agents use the ZeroMQ socket only (choose a shorter agent_endpoint, or set "
        "[node] agent_stream = false to silence this)",
        options_.agent_endpoint, net::kStreamSuffix, net::kMaxIpcPathLength);
    return Status::OK();
  }
  const std::string endpoint = "ipc://" + path;
  HANDOFF_RETURN_IF_ERROR(net::PrepareIpcBind(endpoint, socket_group));
  net::StreamServerOptions stream;
  stream.max_frame_bytes = max_frame_bytes;
  HANDOFF_ASSIGN_OR_RETURN(streams_, net::StreamServer::Listen(path, stream));
  HANDOFF_RETURN_IF_ERROR(net::RestrictIpcSocket(endpoint, socket_group));
  info_.agent_stream = path;
  return Status::OK();
}

void Node::ForgetClosedStreams() {
  size_t forgotten = 0;
  for (const std::string& id : streams_->TakeClosed()) {
    if (receivers_.LastHeard(id) == 0) continue;  // it received nothing
    // Nothing more is pushed to it. What it held keeps its lease, as with a receiver that went
    // silent (DropSilentReceivers): the agent may finish it on another connection (its worker
    // threads' own, or after reconnecting), and if it died, the lease runs out.
    receivers_.Remove(id);
    ++forgotten;
  }
  if (forgotten == 0) return;
  spdlog::info(
      "forgot {} receiving agent connection(s) that closed; what they held goes back when its "
      "lease runs out",
      forgotten);
}

void Node::DropSilentReceivers() {
  const int64_t now = options_.clock->NowMs();
  if (now < next_receiver_sweep_ms_) return;
  next_receiver_sweep_ms_ = now + kReceiverSweepMs;
  const size_t dropped = receivers_.DropSilent(now - options_.receiver_timeout_ms);
  if (dropped == 0) return;
  spdlog::info(
      "forgot {} receiving agent connection(s) not heard from in {} (receiver_timeout); what "
      "they held goes back when its lease runs out",
      dropped, FormatDurationMs(options_.receiver_timeout_ms));
}

void Node::Drain(Inbound* in) {
  // Bounded in bytes too: a turn decodes every request it takes before it handles them, and a
  // frame decodes to at most ~16 bytes of objects per byte (one-byte values), plus its strings.
  // The two agent sockets take turns, so that neither starves the other.
  uint64_t bytes = 0, messages = 0;
  bool zmq_quiet = false, streams_quiet = streams_ == nullptr;
  auto take = [&](std::string routing_id, zmq::message_t frame) {
    bytes += frame.size();
    messages += wire::MessagesIn(frame.to_string_view());
    in->agents.push_back({std::move(routing_id), std::move(frame)});
  };
  while (messages < options_.max_batch && bytes < kMaxTurnFrameBytes &&
         !(zmq_quiet && streams_quiet)) {
    if (!zmq_quiet) {
      auto m = agents_->TryReceive();
      if (!m.ok()) {
        spdlog::error("reading the agent socket: {}", m.status().ToString());
        zmq_quiet = true;
      } else if (!m->has_value()) {
        zmq_quiet = true;
      } else if (net::StreamServer::Owns((*m)->routing_id)) {
        // A ZeroMQ client that took a routing id of the kind stream connections get: its
        // replies would go to one of them. Refused, and not answered.
        ++rejected_;
        ++stats_.rejected;
        spdlog::warn(
            "dropped a request from a ZeroMQ agent connection whose routing id {} is reserved "
            "for stream connections (ids must not start with a zero byte)",
            HexId((*m)->routing_id));
      } else if ((*m)->frames.size() != 1) {
        Reject((*m)->routing_id, 0,
               Status::InvalidArgument("expected exactly one frame per message, got " +
                                       std::to_string((*m)->frames.size())));
      } else {
        take(std::move((*m)->routing_id), std::move((*m)->frames[0]));
      }
    }
    if (!streams_quiet) {
      auto m = streams_->TryReceive();
      if (!m.ok()) {
        spdlog::error("reading the agent stream socket: {}", m.status().ToString());
        streams_quiet = true;
      } else if (!m->has_value()) {
        streams_quiet = true;
      } else {
        take(std::move((*m)->connection), std::move((*m)->frame));
      }
    }
  }
  DrainPeers(in);
}

}  // namespace handoff::node
