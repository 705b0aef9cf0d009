// The bench's agents' end of the agent protocol: one connection to a daemon over its stream
// socket or ZeroMQ (Wire), and requests sent in batches (Outbox).

#ifndef HANDOFF_TESTS_BENCH_AGENT_WIRE_H_
#define HANDOFF_TESTS_BENCH_AGENT_WIRE_H_

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "net/stream.h"
#include "wire/agent_protocol.h"

namespace handoff::bench {

// One agent's connection to its daemon: the daemon's stream socket or its ZeroMQ socket
// (--transport), the same messages on either.
class Wire {
 public:
  Wire(zmq::context_t& ctx, const std::string& endpoint, const std::string& transport)
      : socket_(ctx, zmq::socket_type::dealer) {
    if (transport == "stream") {
      auto stream = handoff::net::StreamClient::Connect(handoff::net::StreamPathFor(endpoint),
                                                        size_t{1} << 31);
      if (!stream.ok()) {
        std::fprintf(stderr, "handoff-bench: %s\n", stream.status().ToString().c_str());
        std::exit(1);
      }
      stream_ = std::move(*stream);
      return;
    }
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.connect(endpoint);
  }
  void Send(std::string_view frame) {
    if (stream_) {
      (void)stream_->Send(frame);
    } else {
      socket_.send(zmq::buffer(frame), zmq::send_flags::none);
    }
  }
  // The next message, waiting up to `timeout` for it; nullopt when none came. The view lasts
  // until the next call.
  std::optional<std::string_view> Receive(std::chrono::milliseconds timeout) {
    if (stream_) {
      auto frame = stream_->Receive(timeout);
      if (!frame.ok() || !*frame) return std::nullopt;
      frame_ = std::move(**frame);
      return std::string_view(frame_);
    }
    if (timeout.count() > 0) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, timeout);
    }
    if (!socket_.recv(message_, zmq::recv_flags::dontwait)) return std::nullopt;
    return message_.to_string_view();
  }

 private:
  zmq::socket_t socket_;
  std::unique_ptr<handoff::net::StreamClient> stream_;
  zmq::message_t message_;
  std::string frame_;
};

// Requests to send: with protocol 2 everything queued goes as batches (at most kMaxBatchItems
// messages and kMaxBatchBytes each: the daemon drops a connection that sends a frame over its
// limit), with 1 one message each.
class Outbox {
 public:
  Outbox(Wire& s, int protocol) : s_(s), protocol_(protocol) {}
  void Add(std::string frame) {
    if (protocol_ < 2) {
      s_.Send(frame);
      return;
    }
    if (!frames_.empty() && bytes_ + frame.size() > handoff::wire::kMaxBatchBytes) Flush();
    bytes_ += frame.size();
    frames_.push_back(std::move(frame));
    if (frames_.size() == handoff::wire::kMaxBatchItems) Flush();
  }
  void Flush() {
    if (frames_.empty()) return;
    if (frames_.size() == 1) {
      s_.Send(frames_[0]);
    } else {
      std::vector<std::string_view> views(frames_.begin(), frames_.end());
      s_.Send(handoff::wire::EncodeBatch(views));
    }
    frames_.clear();
    bytes_ = 0;
  }

 private:
  Wire& s_;
  const int protocol_;
  std::vector<std::string> frames_;
  size_t bytes_ = 0;
};

}  // namespace handoff::bench

#endif  // HANDOFF_TESTS_BENCH_AGENT_WIRE_H_
