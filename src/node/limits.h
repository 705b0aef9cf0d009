// Limits: the bounds every intent, and every change to one, is held to however it arrived: a
// local request (AgentService, Engine::Send) or a peer's message (PeerService). They live in one
// place so that a forwarded intent is checked exactly as a local send is, and so that no value
// from a client or a peer can overflow a time computation or make a stored key too long.
//
// Each check returns OK or InvalidArgument naming the field and the allowed range.
// Thread safety: constants and pure functions.

#ifndef HANDOFF_NODE_LIMITS_H_
#define HANDOFF_NODE_LIMITS_H_

#include <cstdint>
#include <string_view>

#include "base/records.h"
#include "handoff/status.h"

namespace handoff::node {

// [node] busy_poll_us: at most 10 ms (spinning longer only burns a core).
inline constexpr uint32_t kMaxBusyPollUs = 10'000;
// correlation_id, idempotency_key, actor: bytes.
inline constexpr size_t kMaxIdFieldLength = 255;
// Shortest and longest lease an intent may ask for.
inline constexpr int64_t kMinLeaseMs = 100;
inline constexpr int64_t kMaxLeaseMs = 24LL * 3600 * 1000;
// Retry policy: the same ranges the config file allows for the node defaults.
inline constexpr uint32_t kMaxAttemptsLimit = 1'000'000;
inline constexpr int64_t kMaxRetryInitialMs = 24LL * 3600 * 1000;
inline constexpr int64_t kMaxRetryMaxMs = 7LL * 24 * 3600 * 1000;
inline constexpr double kMaxRetryMultiplier = 100.0;
// Timestamps (deadlines, event times): up to the end of year 9999, far from int64 overflow
// however a duration of the ranges above is added.
inline constexpr int64_t kMaxTimestampMs = 253'402'300'799'999;
// A human checkpoint's question, its outcomes, and a decision's comment.
inline constexpr size_t kMaxQuestionBytes = 4096;
inline constexpr size_t kMaxOutcomes = 16;
inline constexpr size_t kMaxOutcomeBytes = 64;
// An error's code and message.
inline constexpr size_t kMaxErrorCodeBytes = 64;
inline constexpr size_t kMaxErrorMessageBytes = 64 * 1024;
// An event's type, and its details (an encoded map).
inline constexpr size_t kMaxEventTypeBytes = 64;
inline constexpr size_t kMaxEventDetailsBytes = 64 * 1024;

// lease_ms in [kMinLeaseMs, kMaxLeaseMs].
Status CheckLeaseMs(int64_t lease_ms);
// A timestamp in [0, kMaxTimestampMs]; `field` names it in the message.
Status CheckTimestamp(std::string_view field, int64_t ms);
// A retry policy; 0 for any value means "the node default" and is accepted.
Status CheckRetryPolicy(uint32_t max_attempts, int64_t retry_initial_ms, double retry_multiplier,
                        int64_t retry_max_ms);
// At most kMaxIdFieldLength bytes.
Status CheckIdField(std::string_view field, std::string_view value);
// A question (with its outcomes) and, when decided, its comment.
Status CheckApproval(const Approval& approval);
Status CheckErrorInfo(std::string_view field, const ErrorInfo& error);

}  // namespace handoff::node

#endif  // HANDOFF_NODE_LIMITS_H_
