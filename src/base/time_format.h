// RFC 3339 timestamps for people and JSON: 2026-11-24T10:15:30.123Z (UTC, milliseconds).
// Thread safety: pure functions.

#ifndef HANDOFF_BASE_TIME_FORMAT_H_
#define HANDOFF_BASE_TIME_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff {

std::string FormatRfc3339(int64_t unix_ms);
// Accepts what FormatRfc3339 writes, with or without fractional seconds, 'Z' or +hh:mm offsets.
Result<int64_t> ParseRfc3339(std::string_view text);

}  // namespace handoff

#endif  // HANDOFF_BASE_TIME_FORMAT_H_
