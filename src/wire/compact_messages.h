// Reading the compact forms of peer messages (compact_messages.cc), for peer_protocol.cc, which
// reads either form; the writers are declared in peer_protocol.h. Internal to wire/.

#ifndef HANDOFF_WIRE_COMPACT_MESSAGES_H_
#define HANDOFF_WIRE_COMPACT_MESSAGES_H_

#include <string_view>

#include "base/records.h"
#include "wire/peer_protocol.h"

namespace handoff::wire {

// A compact message's intent id: its 16 bytes in a bin.
Status ReadCompactId(const msgpack::object& o, IntentId* id);
// An update's array body; `from` is the node that sent it.
Result<RemoteUpdate> ReadCompactUpdateBody(const msgpack::object& body, std::string_view from);
// An intent's array body: the record's fields, its payload and checkpoint (nullptr: none) as
// values within `body`, unchecked; r->id set as soon as it is read.
Status ReadCompactIntentBody(const msgpack::object& body, IntentRecord* r,
                             const msgpack::object** payload, const msgpack::object** checkpoint);

}  // namespace handoff::wire

#endif  // HANDOFF_WIRE_COMPACT_MESSAGES_H_
