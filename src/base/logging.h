// Logging setup: spdlog to stderr with one timestamped line per event.
//
// Log lines say what happened and what to do about it, with the intent id or peer name; the hot
// path logs at debug level only. Thread safety: call InitLogging once at start-up.

#ifndef HANDOFF_BASE_LOGGING_H_
#define HANDOFF_BASE_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string_view>

#include "handoff/status.h"

namespace handoff {

// level: trace, debug, info, warn, error, off.
Status InitLogging(std::string_view level);

}  // namespace handoff

#endif  // HANDOFF_BASE_LOGGING_H_
