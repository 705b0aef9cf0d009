#include "net/stream.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "net/endpoint.h"

namespace handoff::net {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Bytes read from a socket at a time.
constexpr size_t kReadChunk = 64 * 1024;
// A connection is read while less than this is buffered (unless a frame is still incomplete):
// a client that sends faster than the loop takes its requests waits in its socket.
constexpr size_t kMaxBufferedBytes = 256 * 1024;
// Events taken from the epoll set per look, and connections accepted per look.
constexpr int kMaxEvents = 64;
constexpr int kMaxAcceptsPerLook = 64;
constexpr int kListenBacklog = 512;
// A refused connection (over max_connections) is logged at most this often.
constexpr auto kRefusalLogPeriod = std::chrono::seconds(5);
// With no descriptor left to accept a connection, the listening socket is left alone this
// long (or until a connection closes).
constexpr auto kAcceptPause = std::chrono::seconds(1);

// Connection ids: a zero byte, 's', and a counter in 8 big-endian bytes. ZeroMQ makes the ids
// it picks 5 bytes long (a zero byte and a 32-bit counter), and handoff's clients pick ids
// that do not start with a zero byte; a client that picks one of these anyway is refused by
// the loop (StreamServer::Owns).
constexpr size_t kIdBytes = 10;

std::string ConnectionId(uint64_t n) {
  std::string id(kIdBytes, '\0');
  id[1] = 's';
  for (int i = 0; i < 8; ++i) id[2 + i] = static_cast<char>(n >> (56 - 8 * i));
  return id;
}

Status Errno(std::string_view what, const std::string& path, int error) {
  return Status::IOError(std::string(what) + " " + path + ": " + std::strerror(error));
}

Result<sockaddr_un> Address(const std::string& path) {
  if (path.empty() || path.size() > kMaxIpcPathLength) {
    return Status::InvalidArgument("stream socket path '" + path + "' must be 1 to " +
                                   std::to_string(kMaxIpcPathLength) + " bytes");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

std::string StreamPathFor(std::string_view agent_endpoint) {
  if (!IsIpc(agent_endpoint)) return {};
  std::string path = IpcPath(agent_endpoint) + std::string(kStreamSuffix);
  if (path.size() > kMaxIpcPathLength) return {};
  return path;
}

void EncodeStreamHeader(uint32_t size, char out[kStreamHeaderBytes]) {
  out[0] = static_cast<char>(size >> 24);
  out[1] = static_cast<char>(size >> 16);
  out[2] = static_cast<char>(size >> 8);
  out[3] = static_cast<char>(size);
}

uint32_t DecodeStreamHeader(const char in[kStreamHeaderBytes]) {
  const auto* b = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

// ---------------------------------------------------------------------------------------------
// StreamServer

Result<std::unique_ptr<StreamServer>> StreamServer::Listen(const std::string& path,
                                                           const StreamServerOptions& options) {
  HANDOFF_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  // A socket file left by a daemon that was killed: nobody listens on it (the caller checked),
  // and bind() would fail on it. Anything that is not a socket is left alone.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot make a socket for", path, errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, kListenBacklog) != 0) {
    const int error = errno;
    ::close(fd);
    return Errno("cannot listen on", path, error);
  }
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    const int error = errno;
    ::close(fd);
    return Errno("cannot make an epoll set for", path, error);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int error = errno;
    ::close(fd);
    ::close(epoll_fd);
    return Errno("cannot watch", path, error);
  }
  return std::unique_ptr<StreamServer>(new StreamServer(fd, epoll_fd, path, options));
}

StreamServer::~StreamServer() {
  for (auto& [id, c] : by_id_) {
    if (c->fd >= 0) ::close(c->fd);
  }
  ::close(listen_fd_);
  ::close(epoll_fd_);
}

bool StreamServer::Owns(std::string_view connection) {
  return connection.size() == kIdBytes && connection[0] == '\0' && connection[1] == 's';
}

std::vector<std::string> StreamServer::TakeClosed() { return std::move(closed_); }

Result<std::optional<StreamMessage>> StreamServer::TryReceive() {
  bool looked = false;
  while (true) {
    while (!ready_.empty()) {
      auto it = by_id_.find(ready_.front());
      ready_.pop_front();
      if (it == by_id_.end()) continue;
      Conn& c = *it->second;
      c.queued = false;
      if (!HasFrame(c)) {
        if (c.fd < 0) Forget(c.id);
        continue;
      }
      const uint32_t size = DecodeStreamHeader(c.in.data() + c.in_pos);
      StreamMessage m{c.id, zmq::message_t(c.in.data() + c.in_pos + kStreamHeaderBytes, size)};
      c.in_pos += kStreamHeaderBytes + size;
      if (c.in_pos == c.in.size()) {
        held_ -= c.in.size();
        c.in.clear();
        c.in_pos = 0;
      }
      if (HasFrame(c)) {
        c.queued = true;
        ready_.push_back(c.id);
      } else if (c.fd < 0) {
        Forget(c.id);  // closed, and nothing of it is left to take
      } else if (!c.reading) {
        c.reading = true;  // taken what was held back: read again
        Watch(c);
      }
      return std::optional<StreamMessage>(std::move(m));
    }
    if (looked) return std::optional<StreamMessage>();
    Events();
    looked = true;
  }
}

void StreamServer::Events() {
  if (accept_paused_ && SteadyClock::now() >= resume_accept_at_) PauseAccepting(false);
  epoll_event events[kMaxEvents];
  const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == listen_fd_) {
      Accept();
      continue;
    }
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) continue;  // closed earlier in this pass
    Conn& c = *it->second;
    if (events[i].events & EPOLLOUT) Write(c);
    if (c.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) Read(c);
    if (c.fd < 0 && !c.queued) Forget(c.id);
  }
  while (held_ > options_.max_buffered_bytes && ShedLargest()) {
  }
}

bool StreamServer::ShedLargest() {
  Conn* largest = nullptr;
  for (auto& [id, c] : by_id_) {
    if (c->fd >= 0 && (largest == nullptr || c->in.size() > largest->in.size())) {
      largest = c.get();
    }
  }
  if (largest == nullptr || largest->in.empty()) return false;
  Close(*largest, "agent connections hold " + std::to_string(held_) +
                      " bytes of frames not yet served, more than the " +
                      std::to_string(options_.max_buffered_bytes) +
                      " allowed: closed the one holding the most (" +
                      std::to_string(largest->in.size()) + ")");
  held_ -= largest->in.size();
  largest->in.clear();
  largest->in_pos = 0;
  if (!largest->queued) Forget(largest->id);
  return true;
}

void StreamServer::Accept() {
  for (int i = 0; i < kMaxAcceptsPerLook; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: stop looking at the listening socket (it would stay
        // readable, and the loop spin) until a connection closes or a while has passed.
        spdlog::warn(
            "cannot accept agent connections on {} now: {} ({} open); trying again when one "
            "closes",
            path_, std::strerror(errno), by_id_.size());
        PauseAccepting(true);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::warn("accepting an agent connection on {}: {}", path_, std::strerror(errno));
      }
      return;
    }
    if (by_id_.size() >= options_.max_connections) {
      ::close(fd);
      ++refused_;
      const auto now = SteadyClock::now();
      if (now >= next_refusal_log_) {
        spdlog::warn(
            "refused {} agent connection(s) on {}: {} are open, the most this daemon serves "
            "on its stream socket",
            refused_, path_, by_id_.size());
        refused_ = 0;
        next_refusal_log_ = now + kRefusalLogPeriod;
      }
      continue;
    }
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    conn->id = ConnectionId(next_id_++);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::warn("watching an agent connection on {}: {}", path_, std::strerror(errno));
      ::close(fd);
      continue;
    }
    by_fd_[fd] = conn.get();
    by_id_[conn->id] = std::move(conn);
  }
}

void StreamServer::Read(Conn& c) {
  if (!scratch_) scratch_ = std::make_unique<char[]>(kReadChunk);
  while (c.fd >= 0) {
    if (c.in.size() - c.in_pos >= kMaxBufferedBytes && HasFrame(c)) {
      c.reading = false;  // enough held for now: read again once its frames are taken
      Watch(c);
      break;
    }
    const ssize_t n = ::read(c.fd, scratch_.get(), kReadChunk);
    if (n > 0) {
      if (c.in_pos > 0 && (c.in_pos == c.in.size() || c.in_pos >= kMaxBufferedBytes)) {
        held_ -= c.in_pos;
        c.in.erase(0, c.in_pos);
        c.in_pos = 0;
      }
      c.in.append(scratch_.get(), static_cast<size_t>(n));
      held_ += static_cast<size_t>(n);
      if (static_cast<size_t>(n) < kReadChunk) break;  // the socket is empty now
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c, n == 0 ? "" : std::strerror(errno));
  }
  if (!c.queued && HasFrame(c)) {
    c.queued = true;
    ready_.push_back(c.id);
  }
}

void StreamServer::Write(Conn& c) {
  while (c.out_pos < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      c.out_pos += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Close(c, std::strerror(errno));
    return;
  }
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
    if (c.writing) {
      c.writing = false;
      Watch(c);
    }
  } else if (c.out_pos >= c.out.size() / 2) {
    c.out.erase(0, c.out_pos);
    c.out_pos = 0;
  }
}

Status StreamServer::Send(std::string_view connection, std::string_view frame) {
  auto it = by_id_.find(std::string(connection));
  if (it == by_id_.end() || it->second->fd < 0) {
    return Status::Unavailable("the agent connection is gone");
  }
  if (frame.size() > UINT32_MAX) {
    return Status::InvalidArgument("a frame of " + std::to_string(frame.size()) +
                                   " bytes does not fit a stream frame");
  }
  Conn& c = *it->second;
  const size_t unsent = c.out.size() - c.out_pos;
  if (unsent >= options_.max_unsent_bytes) {
    return Status::ResourceExhausted("the agent connection's queue is full");
  }
  char header[kStreamHeaderBytes];
  EncodeStreamHeader(static_cast<uint32_t>(frame.size()), header);
  if (unsent > 0) {  // behind what waits; written when the socket has room (Write)
    c.out.append(header, kStreamHeaderBytes);
    c.out.append(frame);
    return Status::OK();
  }
  iovec iov[2] = {{header, kStreamHeaderBytes}, {const_cast<char*>(frame.data()), frame.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do {
    n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Close(c, std::strerror(errno));
      if (!c.queued) Forget(c.id);
      return Status::Unavailable("the agent connection is gone");
    }
    n = 0;
  }
  const size_t sent = static_cast<size_t>(n);
  if (sent == kStreamHeaderBytes + frame.size()) return Status::OK();
  c.out.clear();
  c.out_pos = 0;
  if (sent < kStreamHeaderBytes) {
    c.out.append(header + sent, kStreamHeaderBytes - sent);
    c.out.append(frame);
  } else {
    c.out.append(frame.substr(sent - kStreamHeaderBytes));
  }
  c.writing = true;
  Watch(c);
  return Status::OK();
}

bool StreamServer::HasFrame(Conn& c) {
  const size_t available = c.in.size() - c.in_pos;
  if (available < kStreamHeaderBytes) return false;
  const uint32_t size = DecodeStreamHeader(c.in.data() + c.in_pos);
  if (size > options_.max_frame_bytes) {
    if (c.fd >= 0) {
      Close(c, "it sent a frame of " + std::to_string(size) + " bytes; the most allowed is " +
                   std::to_string(options_.max_frame_bytes));
    }
    held_ -= c.in.size();
    c.in.clear();
    c.in_pos = 0;
    return false;
  }
  return available >= kStreamHeaderBytes + size;
}

void StreamServer::Watch(Conn& c) {
  if (c.fd < 0) return;
  epoll_event ev{};
  ev.events = (c.reading ? EPOLLIN : 0u) | (c.writing ? EPOLLOUT : 0u);
  ev.data.fd = c.fd;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void StreamServer::Close(Conn& c, std::string_view why) {
  if (c.fd < 0) return;
  if (!why.empty()) spdlog::warn("closed an agent connection on {}: {}", path_, why);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  by_fd_.erase(c.fd);
  ::close(c.fd);
  c.fd = -1;
  c.out.clear();
  c.out_pos = 0;
}

void StreamServer::PauseAccepting(bool pause) {
  if (pause == accept_paused_) return;
  accept_paused_ = pause;
  resume_accept_at_ = SteadyClock::now() + kAcceptPause;
  epoll_event ev{};
  ev.events = pause ? 0u : static_cast<uint32_t>(EPOLLIN);
  ev.data.fd = listen_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
}

void StreamServer::Forget(std::string id) {
  PauseAccepting(false);  // a descriptor is free again
  if (auto it = by_id_.find(id); it != by_id_.end()) held_ -= it->second->in.size();
  by_id_.erase(id);
  closed_.push_back(std::move(id));
}

// ---------------------------------------------------------------------------------------------
// StreamClient

namespace {

// A connected, non-blocking socket; Unavailable with the reason when nothing takes it.
Result<int> Dial(const std::string& path) {
  HANDOFF_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot make a socket for", path, errno);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int error = errno;
    ::close(fd);
    // EAGAIN: the daemon's accept queue is full (it is not taking connections now).
    return Status::Unavailable("cannot connect to " + path + ": " + std::strerror(error));
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<StreamClient>> StreamClient::Connect(const std::string& path,
                                                            size_t max_frame_bytes) {
  HANDOFF_ASSIGN_OR_RETURN(int fd, Dial(path));
  return std::unique_ptr<StreamClient>(new StreamClient(path, max_frame_bytes, fd));
}

StreamClient::~StreamClient() {
  if (fd_ >= 0) ::close(fd_);
}

void StreamClient::Drop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  out_.clear();
  out_pos_ = 0;
  // Whole frames received before the drop are still taken; a partial one goes (the next
  // connection starts with a frame of its own).
  size_t end = in_pos_;
  while (in_.size() - end >= kStreamHeaderBytes) {
    const size_t size = DecodeStreamHeader(in_.data() + end);
    if (size > max_frame_bytes_ || in_.size() - end - kStreamHeaderBytes < size) break;
    end += kStreamHeaderBytes + size;
  }
  in_.resize(end);
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
}

bool StreamClient::Reconnect() {
  const auto now = SteadyClock::now();
  if (now < next_reconnect_) return false;
  next_reconnect_ = now + kReconnectInterval;
  auto fd = Dial(path_);
  if (!fd.ok()) return false;
  fd_ = *fd;
  return true;
}

Status StreamClient::Send(std::string_view frame) {
  if (frame.size() > UINT32_MAX) {
    return Status::InvalidArgument("a frame of " + std::to_string(frame.size()) +
                                   " bytes does not fit a stream frame");
  }
  if (out_.size() - out_pos_ + frame.size() > kMaxQueuedBytes) {
    return Status::ResourceExhausted("more than " + std::to_string(kMaxQueuedBytes >> 20) +
                                     " MiB queued for handoffd, which does not read it");
  }
  if (fd_ < 0) Reconnect();
  char header[kStreamHeaderBytes];
  EncodeStreamHeader(static_cast<uint32_t>(frame.size()), header);
  out_.append(header, kStreamHeaderBytes);
  out_.append(frame);
  if (fd_ >= 0 && !Flush()) Drop();
  return Status::OK();
}

bool StreamClient::Flush() {
  while (out_pos_ < out_.size()) {
    const ssize_t n =
        ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      out_pos_ += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ >= out_.size() / 2) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  return true;
}

Result<std::optional<std::string>> StreamClient::Extract() {
  const size_t available = in_.size() - in_pos_;
  if (available < kStreamHeaderBytes) return std::optional<std::string>();
  const uint32_t size = DecodeStreamHeader(in_.data() + in_pos_);
  if (size > max_frame_bytes_) {
    Drop();
    return Status::Corruption("handoffd sent a frame of " + std::to_string(size) +
                              " bytes, more than the " + std::to_string(max_frame_bytes_) +
                              " this client takes");
  }
  if (available < kStreamHeaderBytes + size) return std::optional<std::string>();
  std::string frame(in_.data() + in_pos_ + kStreamHeaderBytes, size);
  in_pos_ += kStreamHeaderBytes + size;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  return std::optional<std::string>(std::move(frame));
}

Result<std::optional<std::string>> StreamClient::Receive(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  char buffer[kReadChunk];
  while (true) {
    HANDOFF_ASSIGN_OR_RETURN(std::optional<std::string> frame, Extract());
    if (frame) return frame;
    const auto now = SteadyClock::now();
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    if (fd_ < 0 && !Reconnect()) {
      if (left.count() <= 0) return std::optional<std::string>();
      // Away: look again when the next reconnect is due, or give up at the deadline.
      std::this_thread::sleep_until(std::min(deadline, next_reconnect_));
      continue;
    }
    pollfd p{fd_, static_cast<short>(POLLIN | (out_pos_ < out_.size() ? POLLOUT : 0)), 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (rc < 0 && errno != EINTR)
      return Status::IOError(std::string("poll: ") + std::strerror(errno));
    if (rc <= 0) {
      if (rc == 0 && SteadyClock::now() >= deadline) return std::optional<std::string>();
      continue;
    }
    if ((p.revents & POLLOUT) && !Flush()) {
      Drop();
      continue;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      while (true) {
        const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
        if (n > 0) {
          in_.append(buffer, static_cast<size_t>(n));
          if (static_cast<size_t>(n) < sizeof(buffer)) break;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        Drop();  // the daemon went away (or the connection broke): reconnect
        break;
      }
    }
  }
}

}  // namespace handoff::net
