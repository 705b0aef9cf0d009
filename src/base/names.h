// Validation of the names users write: agent addresses, intent types and node names.
//
//   agent address  agent://<org>/<env>/<name>, each segment of [a-z0-9._-], at most 255 bytes
//   intent type    intent.<name>.v<N>, <name> of [a-z0-9._-], N a positive integer
//   node name      [a-z0-9._-], 1 to 63 bytes
//
// Each validator returns OK or InvalidArgument with a message that quotes the input and says
// what a valid one looks like. Thread safety: pure functions.

#ifndef HANDOFF_BASE_NAMES_H_
#define HANDOFF_BASE_NAMES_H_

#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff {

inline constexpr size_t kMaxAddressLength = 255;
inline constexpr size_t kMaxIntentTypeLength = 128;
inline constexpr size_t kMaxNodeNameLength = 63;

Status ValidateAgentAddress(std::string_view address);
// `s` in single quotes, fit for a log line or an error message however it arrived: at most 80
// bytes of it, anything outside printable ASCII shown as '?'.
std::string Quoted(std::string_view s);
Status ValidateIntentType(std::string_view type);
// A connection's routing id (ZeroMQ makes it up: five binary bytes) as hex, at most 32 bytes
// of it: for the log and `handoffctl agents`.
std::string HexId(std::string_view id);
Status ValidateNodeName(std::string_view name);

}  // namespace handoff

#endif  // HANDOFF_BASE_NAMES_H_
