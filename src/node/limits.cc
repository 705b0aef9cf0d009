#include "node/limits.h"

#include <string>

#include "base/units.h"

namespace handoff::node {
namespace {

Status Bad(std::string_view field, const std::string& why) {
  return Status::InvalidArgument(std::string(field) + ": " + why);
}

}  // namespace

Status CheckLeaseMs(int64_t lease_ms) {
  if (lease_ms >= kMinLeaseMs && lease_ms <= kMaxLeaseMs) return Status::OK();
  return Bad("lease_ms",
             "lease " + FormatDurationMs(lease_ms) + " is out of range: use 100ms to 24h");
}

Status CheckTimestamp(std::string_view field, int64_t ms) {
  if (ms >= 0 && ms <= kMaxTimestampMs) return Status::OK();
  return Bad(field, std::to_string(ms) + " is not a time between 1970 and 9999 (Unix ms)");
}

Status CheckRetryPolicy(uint32_t max_attempts, int64_t retry_initial_ms, double retry_multiplier,
                        int64_t retry_max_ms) {
  if (max_attempts > kMaxAttemptsLimit) {
    return Bad("max_attempts", std::to_string(max_attempts) + " is above 1000000");
  }
  if (retry_initial_ms < 0 || retry_initial_ms > kMaxRetryInitialMs) {
    return Bad("retry_initial_ms", std::to_string(retry_initial_ms) + " is not between 0 and 24h");
  }
  // NaN fails both comparisons, so it is refused too.
  if (retry_multiplier != 0 &&
      !(retry_multiplier >= 1.0 && retry_multiplier <= kMaxRetryMultiplier)) {
    return Bad("retry_multiplier", "must be between 1 and 100");
  }
  if (retry_max_ms < 0 || retry_max_ms > kMaxRetryMaxMs) {
    return Bad("retry_max_ms", std::to_string(retry_max_ms) + " is not between 0 and 7d");
  }
  return Status::OK();
}

Status CheckIdField(std::string_view field, std::string_view value) {
  if (value.size() <= kMaxIdFieldLength) return Status::OK();
  return Bad(field, "longer than 255 bytes");
}

Status CheckApproval(const Approval& a) {
  if (a.question.size() > kMaxQuestionBytes) return Bad("approval", "the question is over 4 KiB");
  if (a.outcomes.size() > kMaxOutcomes) return Bad("approval", "more than 16 outcomes");
  for (const std::string& o : a.outcomes) {
    if (o.empty() || o.size() > kMaxOutcomeBytes) {
      return Bad("approval", "an outcome must be 1 to 64 bytes");
    }
  }
  if (a.comment.size() > kMaxQuestionBytes) return Bad("approval", "the comment is over 4 KiB");
  if (a.decision.size() > kMaxOutcomeBytes) return Bad("approval", "the decision is over 64 bytes");
  HANDOFF_RETURN_IF_ERROR(CheckIdField("approval.requested_by", a.requested_by));
  HANDOFF_RETURN_IF_ERROR(CheckIdField("approval.decided_by", a.decided_by));
  HANDOFF_RETURN_IF_ERROR(CheckTimestamp("approval.requested_at", a.requested_at_ms));
  return CheckTimestamp("approval.decided_at", a.decided_at_ms);
}

Status CheckErrorInfo(std::string_view field, const ErrorInfo& error) {
  if (error.code.size() > kMaxErrorCodeBytes) return Bad(field, "code is longer than 64 bytes");
  if (error.message.size() > kMaxErrorMessageBytes) {
    return Bad(field, "message is longer than 64 KiB");
  }
  return Status::OK();
}

}  // namespace handoff::node
