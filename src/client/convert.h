// Conversions between the wire's msgpack and the client API's JSON and records.
// Thread safety: pure functions.

#ifndef HANDOFF_CLIENT_CONVERT_H_
#define HANDOFF_CLIENT_CONVERT_H_

#include <string>

#include "base/msgpack_io.h"
#include "handoff/intent.h"
#include "handoff/status.h"

namespace handoff {

// JSON -> one encoded msgpack value.
std::string JsonToMsgpack(const Json& value);
// A decoded msgpack value -> JSON. Binary values become arrays of bytes.
Result<Json> MsgpackToJson(const msgpack::object& object);

// An "intent" map of the protocol (with optional payload/checkpoint/result).
Result<Intent> ReadIntent(const msgpack::object& object);
Result<Event> ReadEvent(const msgpack::object& object);

}  // namespace handoff

#endif  // HANDOFF_CLIENT_CONVERT_H_
