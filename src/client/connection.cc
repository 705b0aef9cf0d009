#include "client/connection.h"

#include <algorithm>
#include <thread>

#include "base/clock.h"
#include "base/defaults.h"
#include "base/intent_id.h"
#include "net/endpoint.h"

namespace handoff {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The largest request a client sends; the daemon's own limits are smaller and reported as
// errors, this one only guards the socket.
constexpr size_t kMaxRequestBytes = size_t{64} << 20;
// The largest frame taken from the daemon on the stream socket (its replies are bounded by its
// own limits, far below this; ZeroMQ's side takes any size).
constexpr size_t kMaxReplyBytes = size_t{1} << 31;

// How long Open waits for a daemon that is starting to bind its ipc socket, looking this often.
constexpr milliseconds kStartGrace{1'000};
constexpr milliseconds kStartPoll{20};

milliseconds Remaining(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
  return left.count() > 0 ? left : milliseconds(0);
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Open(const ClientOptions& given) {
  ClientOptions options = given;
  if (options.endpoint.empty()) options.endpoint = DefaultAgentEndpoint();
  HANDOFF_RETURN_IF_ERROR(net::ValidateEndpoint(options.endpoint));
  const std::string stream_path = options.stream ? net::StreamPathFor(options.endpoint) : "";
  auto open_stream = [&]() -> std::unique_ptr<Connection> {
    if (stream_path.empty()) return nullptr;
    auto stream = net::StreamClient::Connect(stream_path, kMaxReplyBytes);
    if (!stream.ok()) return nullptr;  // none there (an older daemon, or agent_stream off)
    return std::unique_ptr<Connection>(new Connection(std::move(options), std::move(*stream)));
  };
  if (auto c = open_stream()) return c;
  // A daemon started a moment ago (`handoffd &` then a client at once) binds its socket
  // within moments: give it that long before saying that nothing listens.
  const auto grace = SteadyClock::now() + std::min(kStartGrace, options.request_timeout);
  net::IpcProbe probe = net::ProbeIpc(options.endpoint);
  while (probe == net::IpcProbe::kNothing && SteadyClock::now() < grace) {
    std::this_thread::sleep_for(kStartPoll);
    probe = net::ProbeIpc(options.endpoint);
  }
  if (probe == net::IpcProbe::kDenied) {
    return Status::Unavailable(net::IpcDeniedMessage(options.endpoint));
  }
  if (probe == net::IpcProbe::kNothing) {
    return Status::Unavailable("handoffd is not running: nothing listens on " + options.endpoint +
                               " (start handoffd, or point --socket / HANDOFF_SOCKET at its "
                               "agent_endpoint)");
  }
  // A daemon that was starting binds its stream socket before the agent socket.
  if (auto c = open_stream()) return c;
  auto context = std::make_unique<zmq::context_t>(1);
  // A routing id unique to this connection, so the daemon can tell its clients apart.
  std::string routing_id = "c-" + NewIntentId(SystemClock::Instance().NowMs()).ToString();
  net::SocketOptions socket;
  socket.max_message_bytes = -1;  // what the daemon sends is trusted
  HANDOFF_ASSIGN_OR_RETURN(std::unique_ptr<net::Dealer> dealer,
                           net::Dealer::Connect(*context, options.endpoint, routing_id, socket));
  return std::unique_ptr<Connection>(
      new Connection(std::move(options), std::move(context), std::move(dealer)));
}

Status Connection::SendFrame(std::string_view frame) {
  return stream_ ? stream_->Send(frame) : dealer_->Send(frame);
}

Result<bool> Connection::ReceiveFrame(milliseconds timeout) {
  auto decode = [this](std::string_view frame) -> Status {
    auto replies = wire::DecodeReplies(frame);
    if (!replies.ok()) {
      return Status::Corruption("undecodable message from handoffd: " + replies.status().message());
    }
    for (wire::Reply& r : *replies) inbox_.push_back(std::move(r));
    return Status::OK();
  };
  if (stream_) {
    HANDOFF_ASSIGN_OR_RETURN(std::optional<std::string> frame, stream_->Receive(timeout));
    if (!frame) return false;
    HANDOFF_RETURN_IF_ERROR(decode(*frame));
    return true;
  }
  HANDOFF_ASSIGN_OR_RETURN(std::optional<zmq::message_t> frame, dealer_->Receive(timeout));
  if (!frame) return false;
  HANDOFF_RETURN_IF_ERROR(decode(frame->to_string_view()));
  return true;
}

Result<std::optional<ReceivedReply>> Connection::ReceiveOne(milliseconds timeout) {
  if (inbox_.empty()) {
    HANDOFF_ASSIGN_OR_RETURN(bool got, ReceiveFrame(timeout));
    if (!got || inbox_.empty()) return std::optional<ReceivedReply>();
  }
  ReceivedReply next{std::move(inbox_.front())};
  inbox_.pop_front();
  return std::optional<ReceivedReply>(std::move(next));
}

Status Connection::Negotiate(milliseconds timeout) {
  auto hello =
      Exchange(wire::op::kHello, nullptr, wire::kAgentProtocolVersion, Resend::kYes, timeout);
  if (hello.ok()) {
    uint64_t spoken = 1;
    HANDOFF_RETURN_IF_ERROR(hello->reply.body().OptUint("protocol", &spoken));
    version_ = std::min(spoken, wire::kAgentProtocolVersion);
    return Status::OK();
  }
  if (hello.status().IsInvalidArgument()) {  // "unsupported protocol version 2"
    version_ = wire::kMessageVersion;
    return Status::OK();
  }
  return hello.status();
}

Result<ReceivedReply> Connection::Call(std::string_view op,
                                       const std::function<void(MsgWriter&)>& fill, Resend resend,
                                       milliseconds timeout) {
  if (timeout.count() == 0) timeout = options_.request_timeout;
  if (version_ == 0) {
    Status asked = Negotiate(timeout);
    if (asked.IsUnavailable()) {  // said of the caller's request, not of the hello before it
      return Status::Unavailable("handoffd at " + options_.endpoint + " did not answer '" +
                                 std::string(op) + "' within " + std::to_string(timeout.count()) +
                                 " ms");
    }
    HANDOFF_RETURN_IF_ERROR(asked);
  }
  return Exchange(op, fill, version_, resend, timeout);
}

Result<ReceivedReply> Connection::Exchange(std::string_view op,
                                           const std::function<void(MsgWriter&)>& fill,
                                           uint64_t version, Resend resend, milliseconds timeout) {
  const uint64_t rid = next_rid_++;
  wire::RequestBuilder builder(op, rid, version);
  if (fill) fill(builder.w());
  const std::string request = builder.Finish();
  if (request.size() > kMaxRequestBytes) {
    return Status::InvalidArgument("request is " + std::to_string(request.size()) +
                                   " bytes; the largest a client sends is 64 MiB");
  }

  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    HANDOFF_RETURN_IF_ERROR(SendFrame(request));
    const auto resend_at = resend == Resend::kYes
                               ? std::min(deadline, SteadyClock::now() + options_.resend_interval)
                               : deadline;
    HANDOFF_ASSIGN_OR_RETURN(std::optional<ReceivedReply> got,
                             AwaitReply(rid, Remaining(resend_at)));
    if (got) return std::move(*got);
    if (SteadyClock::now() >= deadline) {
      return Status::Unavailable("handoffd at " + options_.endpoint + " did not answer '" +
                                 std::string(op) + "' within " + std::to_string(timeout.count()) +
                                 " ms");
    }
  }
}

Result<std::optional<ReceivedReply>> Connection::AwaitReply(uint64_t rid, milliseconds timeout) {
  const auto until = SteadyClock::now() + timeout;
  while (SteadyClock::now() < until) {
    HANDOFF_ASSIGN_OR_RETURN(std::optional<ReceivedReply> got, ReceiveOne(Remaining(until)));
    if (!got) break;
    if (!got->reply.push.empty()) {
      pushes_.push_back(std::move(*got));
      continue;
    }
    if (got->reply.rid != rid) continue;  // a late reply to an abandoned request
    if (!got->reply.status.ok()) return got->reply.status;
    return got;
  }
  return std::optional<ReceivedReply>();
}

Result<std::optional<ReceivedReply>> Connection::NextPush(milliseconds timeout) {
  if (!pushes_.empty()) {
    ReceivedReply next = std::move(pushes_.front());
    pushes_.pop_front();
    return std::optional<ReceivedReply>(std::move(next));
  }
  const auto deadline = SteadyClock::now() + timeout;
  do {
    HANDOFF_ASSIGN_OR_RETURN(std::optional<ReceivedReply> got, ReceiveOne(Remaining(deadline)));
    if (!got) break;
    if (!got->reply.push.empty()) return got;
    // A reply nobody waits for any more: drop it.
  } while (SteadyClock::now() < deadline);
  return std::optional<ReceivedReply>();
}

}  // namespace handoff
