// Streams: the agent protocol over a plain Unix stream socket, served by handoffd's loop itself.
//
// Beside its ZeroMQ agent socket (ipc://PATH), handoffd listens on PATH.stream ([node]
// agent_stream). The messages are the same (one msgpack value each, a map or a batch); on the
// stream each is one frame: a 4-byte big-endian length, then that many bytes. A ZeroMQ message
// crosses four threads (the sender's, its I/O thread, the receiver's I/O thread, the
// receiver's); a frame on the stream crosses two, which takes about a third off a local round
// trip at one request in flight (docs/performance.md, "The agent stream socket").
//
// StreamServer is the daemon's end: non-blocking, polled by the loop through one descriptor
// (an epoll set). Each accepted connection gets a connection id that no ZeroMQ routing id of a
// well-behaved client equals (Owns). Memory is bounded per connection: what is read but not
// yet taken (256 KiB, or one frame of at most max_frame_bytes), and what is not yet written
// (max_unsent_bytes, past which Send reports ResourceExhausted, as a full ZeroMQ queue does);
// and for all of them: what they hold read and not yet served (max_buffered_bytes), and how
// many are open (max_connections). A connection is reported closed (TakeClosed) once its last
// frame read has been taken.
//
// StreamClient is a client's end: it queues what it sends while the daemon is away and
// reconnects when the connection drops, as a ZeroMQ DEALER does; what was queued when a
// connection dropped is dropped with it (clients resend after silence).
//
// Thread safety: each object belongs to one thread.

#ifndef HANDOFF_NET_STREAM_H_
#define HANDOFF_NET_STREAM_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "handoff/status.h"

namespace handoff::net {

inline constexpr size_t kStreamHeaderBytes = 4;
// Appended to an ipc:// agent endpoint's path to name its stream socket.
inline constexpr std::string_view kStreamSuffix = ".stream";

// The stream socket's path for an agent endpoint: its ipc path with kStreamSuffix appended;
// empty when the endpoint is not ipc://, or when that path would be longer than a Unix
// socket's path may be.
std::string StreamPathFor(std::string_view agent_endpoint);

// The 4-byte header of a frame of `size` bytes.
void EncodeStreamHeader(uint32_t size, char out[kStreamHeaderBytes]);
uint32_t DecodeStreamHeader(const char in[kStreamHeaderBytes]);

struct StreamServerOptions {
  // A frame announcing more than this closes its connection (as ZeroMQ's maxmsgsize does).
  size_t max_frame_bytes = size_t{64} << 20;
  // Bytes queued for one connection, not yet written, past which Send reports
  // ResourceExhausted.
  size_t max_unsent_bytes = size_t{1} << 20;
  // Connections beyond this many are accepted and closed at once (and logged).
  size_t max_connections = 4096;
  // Bytes read from all connections and not yet served (frames waiting, and frames still
  // arriving). Past it, the connection holding the most is closed (and logged): many clients
  // each sending a large frame slowly cannot make the daemon hold more than this.
  size_t max_buffered_bytes = size_t{256} << 20;
};

// One frame received, and the connection it came on.
struct StreamMessage {
  std::string connection;
  zmq::message_t frame;
};

class StreamServer {
 public:
  // Binds and listens on `path` (replacing a stale socket file there: check first that nobody
  // listens, as PrepareIpcBind does).
  static Result<std::unique_ptr<StreamServer>> Listen(const std::string& path,
                                                      const StreamServerOptions& options);
  ~StreamServer();  // closes every connection and the listening socket (the file stays)
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Readable when there is something to do: a connection to accept, bytes to read or room to
  // write. Poll it, then call TryReceive.
  int fd() const { return epoll_fd_; }
  // True when whole frames wait, already read: the caller must not sleep in poll.
  bool pending() const { return !ready_.empty(); }
  // The next frame, in turn across connections: those already read first, else whatever the
  // sockets have now. Never blocks.
  Result<std::optional<StreamMessage>> TryReceive();
  // Queues `frame` for `connection` and writes what the socket takes now. Unavailable if the
  // connection is gone, ResourceExhausted if it has max_unsent_bytes waiting.
  Status Send(std::string_view connection, std::string_view frame);
  // True for ids this server gives its connections (no ZeroMQ routing id is one).
  static bool Owns(std::string_view connection);
  // Connections closed since the last call (by their clients, or for a frame too large).
  std::vector<std::string> TakeClosed();
  size_t connections() const { return by_id_.size(); }
  const std::string& path() const { return path_; }

 private:
  struct Conn {
    int fd = -1;
    std::string id;
    std::string in;  // read, not yet taken: in[in_pos..]
    size_t in_pos = 0;
    std::string out;  // not yet written: out[out_pos..]
    size_t out_pos = 0;
    bool queued = false;   // in ready_
    bool reading = true;   // EPOLLIN is on
    bool writing = false;  // EPOLLOUT is on
  };
  StreamServer(int listen_fd, int epoll_fd, std::string path, StreamServerOptions options)
      : listen_fd_(listen_fd), epoll_fd_(epoll_fd), path_(std::move(path)), options_(options) {}
  void Events();  // one epoll_wait pass, without waiting
  void Accept();
  void Read(Conn& c);
  void Write(Conn& c);
  void Watch(Conn& c);  // makes epoll's interest match c.reading and c.writing
  // Whether c.in holds a whole frame (closing c, and returning false, for one too large).
  bool HasFrame(Conn& c);
  // Closes c's socket (logging `why` unless it is empty: a client that hung up). Its frames
  // already read are still taken; then it is forgotten.
  void Close(Conn& c, std::string_view why);
  // Closes the open connection that holds the most bytes read and not yet served (what it
  // held goes); false when none holds any.
  bool ShedLargest();
  // Forgets a closed connection with nothing left to take, and reports it (TakeClosed).
  void Forget(std::string id);
  // Stops (or resumes) watching the listening socket: while no descriptor is left to accept
  // with, it would stay readable and the loop would spin.
  void PauseAccepting(bool pause);

  int listen_fd_;
  int epoll_fd_;
  std::string path_;
  StreamServerOptions options_;
  uint64_t next_id_ = 1;
  size_t held_ = 0;  // bytes of every connection's `in`
  std::unordered_map<std::string, std::unique_ptr<Conn>> by_id_;
  std::unordered_map<int, Conn*> by_fd_;
  std::deque<std::string> ready_;  // connections with a whole frame read, in turn
  std::vector<std::string> closed_;
  std::unique_ptr<char[]> scratch_;  // what a read lands in
  uint64_t refused_ = 0;             // connections over max_connections, since the last log line
  bool accept_paused_ = false;       // PauseAccepting
  std::chrono::steady_clock::time_point resume_accept_at_{};
  std::chrono::steady_clock::time_point next_refusal_log_{};
};

class StreamClient {
 public:
  // Connects to `path`. Unavailable, with the reason, when nothing takes the connection: no
  // socket, a stale one, or one this user may not use (callers that want to say which probe
  // with ProbeIpc). Frames larger than `max_frame_bytes` from the daemon are refused.
  static Result<std::unique_ptr<StreamClient>> Connect(const std::string& path,
                                                       size_t max_frame_bytes);
  ~StreamClient();
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  // Queues one frame and writes what the socket takes now; the rest goes out during later
  // calls. ResourceExhausted when kMaxQueuedBytes are already waiting.
  Status Send(std::string_view frame);
  // Waits up to `timeout` for one frame (writing what is queued meanwhile); nullopt on
  // timeout. A dropped connection is reconnected (at most every kReconnectInterval) while it
  // waits. Corruption for a frame larger than max_frame_bytes (the connection is dropped).
  Result<std::optional<std::string>> Receive(std::chrono::milliseconds timeout);
  bool connected() const { return fd_ >= 0; }

  static constexpr size_t kMaxQueuedBytes = size_t{256} << 20;
  static constexpr std::chrono::milliseconds kReconnectInterval{100};

 private:
  StreamClient(std::string path, size_t max_frame_bytes, int fd)
      : path_(std::move(path)), max_frame_bytes_(max_frame_bytes), fd_(fd) {}
  void Drop();       // closes the connection; what was queued or half read goes with it
  bool Reconnect();  // true when connected again
  bool Flush();      // writes what the socket takes; false when the connection dropped
  // A whole frame from in_, if one is there.
  Result<std::optional<std::string>> Extract();

  std::string path_;
  size_t max_frame_bytes_;
  int fd_;
  std::string in_;
  size_t in_pos_ = 0;
  std::string out_;
  size_t out_pos_ = 0;
  std::chrono::steady_clock::time_point next_reconnect_{};
};

}  // namespace handoff::net

#endif  // HANDOFF_NET_STREAM_H_
