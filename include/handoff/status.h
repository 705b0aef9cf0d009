// Status and Result<T>: how every handoff API reports success or failure.
//
// A Status is either OK or one code from a small closed set plus a human-readable message that
// says what went wrong and, where it can, what to do about it. The same codes travel on the wire
// (docs/protocol.md, "Error codes"), so an error raised inside the daemon reaches a client with its
// code intact. Result<T> carries either a value or a non-OK Status.
//
// Thread safety: values; safe to copy and move between threads.

#ifndef HANDOFF_STATUS_H_
#define HANDOFF_STATUS_H_

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace handoff {

enum class Code : uint8_t {
  kOk = 0,
  kNotFound,           // the named thing does not exist
  kAlreadyExists,      // a create collided with an existing thing
  kInvalidArgument,    // the request is malformed or breaks a documented limit
  kConflict,           // the request is well formed but the current state refuses it
  kCorruption,         // stored or received bytes do not decode
  kIOError,            // the operating system refused (disk full, permissions, ...)
  kUnavailable,        // the peer or daemon cannot be reached now; retrying may help
  kTimedOut,           // a bounded wait ran out
  kResourceExhausted,  // a configured capacity is used up
  kCancelled,          // the work was cancelled
  kNotStored,          // the daemon could not store the request (disk full, I/O error):
                       // nothing of it took effect, and sending it again is safe
};

// The wire and CLI spelling of a code: "not_found", "invalid_argument", ...
std::string_view CodeName(Code code);
// Inverse of CodeName; nullopt for an unknown name.
std::optional<Code> CodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status Conflict(std::string m) { return Status(Code::kConflict, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status TimedOut(std::string m) { return Status(Code::kTimedOut, std::move(m)); }
  static Status ResourceExhausted(std::string m) {
    return Status(Code::kResourceExhausted, std::move(m));
  }
  static Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
  static Status NotStored(std::string m) { return Status(Code::kNotStored, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsConflict() const { return code_ == Code::kConflict; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsTimedOut() const { return code_ == Code::kTimedOut; }
  bool IsResourceExhausted() const { return code_ == Code::kResourceExhausted; }
  bool IsCancelled() const { return code_ == Code::kCancelled; }
  bool IsNotStored() const { return code_ == Code::kNotStored; }

  // "ok", or "<code>: <message>".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value of type T, or the non-OK Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "a Result without a value needs a non-OK status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace handoff

// Early-return helpers for code that propagates a Status upward.
#define HANDOFF_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::handoff::Status _handoff_st = (expr);    \
    if (!_handoff_st.ok()) return _handoff_st; \
  } while (0)

#define HANDOFF_CONCAT_INNER_(a, b) a##b
#define HANDOFF_CONCAT_(a, b) HANDOFF_CONCAT_INNER_(a, b)
#define HANDOFF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
// HANDOFF_ASSIGN_OR_RETURN(auto x, MaybeX()); declares x or returns the error.
#define HANDOFF_ASSIGN_OR_RETURN(lhs, expr) \
  HANDOFF_ASSIGN_OR_RETURN_IMPL_(HANDOFF_CONCAT_(_handoff_r_, __LINE__), lhs, expr)

#endif  // HANDOFF_STATUS_H_
