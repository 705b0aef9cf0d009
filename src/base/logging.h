// Logging setup: spdlog to stderr with one line per event: timestamped text, or JSON lines.
//
// Log lines say what happened and what to do about it, with the intent id or peer name; the hot
// path logs at debug level only. Thread safety: call InitLogging once at start-up.

#ifndef HANDOFF_BASE_LOGGING_H_
#define HANDOFF_BASE_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string_view>

#include "handoff/status.h"

namespace handoff {

// level: trace, debug, info, warn, error, off. format: "text" (a timestamped line) or "json"
// (one object per line, {"time", "level", "msg"}, for log shippers).
Status InitLogging(std::string_view level, std::string_view format = "text");

}  // namespace handoff

#endif  // HANDOFF_BASE_LOGGING_H_
