// Peer messages as a test builds them, to forge or to stage by hand: an intent as an origin
// forwards it, and the frames of intents, updates and controls (wire/peer_protocol.h).

#ifndef HANDOFF_TESTS_SUPPORT_PEER_MESSAGES_H_
#define HANDOFF_TESTS_SUPPORT_PEER_MESSAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/records.h"
#include "wire/peer_protocol.h"

namespace handoff::testing {

// An intent for `to` as node `origin` forwards it: every field within bounds.
IntentRecord ForwardableIntent(const std::string& to, const std::string& origin);
// The payload IntentFrame sends unless told otherwise: {"n": 1}.
std::string SmallPayload();

std::string IntentFrame(const std::string& from, uint64_t seq, const IntentRecord& r,
                        const std::string& payload = SmallPayload());
std::string UpdateFrame(const std::string& from, uint64_t seq, const wire::RemoteUpdate& u);
std::string ControlFrame(const std::string& from, uint64_t seq, const std::string& id,
                         const std::string& action);

// An update as destination `node` would send it: one event per status, numbered from `first`.
wire::RemoteUpdate StatusUpdate(const IntentId& id, const std::string& node,
                                const std::vector<IntentStatus>& statuses, uint32_t first = 2);

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_PEER_MESSAGES_H_
