#include "net/zap.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "net/sockets.h"

namespace handoff::net {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr int kStopCheckMs = 100;
// Distinct (address, key) pairs logged; past this, one line in every 1000 refusals.
constexpr size_t kMaxLogged = 1024;

std::string Z85(std::string_view key) {
  if (key.size() != 32) return "(a " + std::to_string(key.size()) + "-byte key)";
  char text[41];
  zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(key.data()), key.size());
  return text;
}

// Printable, bounded: a peer address comes from the network.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

}  // namespace

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                      std::map<std::string, std::string> keys,
                                                      std::string node) {
  std::map<std::string, std::string> binary;
  for (const auto& [key, name] : keys) {
    uint8_t bytes[32];
    if (key.size() != 40 || zmq_z85_decode(bytes, key.c_str()) == nullptr) {
      return Status::InvalidArgument("invalid CURVE key for '" + name + "'");
    }
    binary.emplace(std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes)), name);
  }
  try {
    zmq::socket_t socket(context, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(kZapEndpoint);
    std::unique_ptr<ZapHandler> handler(
        new ZapHandler(std::move(socket), std::move(binary), std::move(node)));
    handler->thread_ = std::thread([h = handler.get()] { h->Run(); });
    return handler;
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "binding the ZAP handler");
  }
}

ZapHandler::ZapHandler(zmq::socket_t socket, std::map<std::string, std::string> keys,
                       std::string node)
    : socket_(std::move(socket)), keys_(std::move(keys)), node_(std::move(node)) {}

ZapHandler::~ZapHandler() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Run() {
  while (!stop_.load()) {
    try {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(kStopCheckMs)) == 0) continue;
      std::vector<zmq::message_t> request;
      do {
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
        request.push_back(std::move(part));
      } while (socket_.get(zmq::sockopt::rcvmore) && request.size() < 16);
      while (socket_.get(zmq::sockopt::rcvmore)) {  // more frames than any request has
        zmq::message_t extra;
        if (!socket_.recv(extra, zmq::recv_flags::dontwait)) break;
      }
      std::vector<std::string> reply = Answer(request);
      for (size_t i = 0; i < reply.size(); ++i) {
        socket_.send(zmq::buffer(reply[i]),
                     i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      spdlog::error("ZAP handler: {}", e.what());
    }
  }
}

std::vector<std::string> ZapHandler::Answer(const std::vector<zmq::message_t>& request) {
  // version, request id, domain, address, identity, mechanism, credentials...
  auto frame = [&](size_t i) {
    return i < request.size() ? request[i].to_string() : std::string();
  };
  const std::string request_id = frame(1);
  auto reply = [&](const char* code, const std::string& text, const std::string& user) {
    return std::vector<std::string>{"1.0", request_id, code, text, user, ""};
  };
  if (request.size() < 6 || frame(0) != "1.0") return reply("500", "malformed ZAP request", "");
  const std::string address = Printable(frame(3));
  if (frame(2) != kPeerZapDomain || frame(5) != "CURVE" || request.size() != 7) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return reply("400", "only CURVE clients with a listed key are admitted", "");
  }
  const std::string key = frame(6);
  auto known = keys_.find(key);
  if (known == keys_.end()) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    LogRefusal(address, Z85(key));
    return reply("400", "unknown key", "");
  }
  admitted_.fetch_add(1, std::memory_order_relaxed);
  return reply("200", "OK", known->second);
}

void ZapHandler::LogRefusal(const std::string& address, const std::string& key) {
  const std::string id = address + " " + key;
  auto seen = logged_.find(id);
  if (seen != logged_.end()) {
    ++seen->second;
    return;
  }
  if (logged_.size() >= kMaxLogged) {
    if (refused_.load() % 1000 == 0) {
      spdlog::warn("refused {} peer connections with unknown keys so far (latest from {}, key {})",
                   refused_.load(), address, key);
    }
    return;
  }
  logged_.emplace(id, 1);
  spdlog::error(
      "refused a peer connection from {}: its key {} is not listed in [[peers]] on node {}. "
      "If it belongs to a peer, add this key to [[peers]] on node {} (public_key = \"{}\" in "
      "that peer's entry) and restart handoffd; otherwise something unknown is knocking",
      address, key, node_, node_, key);
}

}  // namespace handoff::net
