// libFuzzer target: one frame from a peer, through the decoders the daemon runs before a
// message reaches the engine: a batch split into its messages, the envelope, an intent's
// fields, an update (either form, and a compact one rewritten as a map), a control.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/msgpack_io.h"
#include "base/records.h"
#include "wire/peer_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff;
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto batch = wire::DecodePeerMessages(frame);
  if (batch.ok() && (batch->empty() || batch->size() > wire::kMaxPeerBatchItems)) {
    __builtin_trap();
  }
  auto msg = wire::DecodePeerMessage(frame);
  if (!msg.ok() || msg->body == nullptr) return 0;
  auto update = wire::ReadRemoteUpdate(*msg->body, msg->from);
  if (update.ok()) {
    // What a decoded update holds must decode again (it is stored as it is).
    for (const std::string& blob : {update->checkpoint, update->result}) {
      if (!blob.empty() && !Unpack(blob).ok()) __builtin_trap();
    }
  }
  // A compact update this node reads, rewritten for an older node, reads as the same update.
  auto verbose = wire::VerboseFrame(frame);
  if (verbose.ok() && verbose->has_value()) {
    if (!update.ok()) __builtin_trap();
    auto again = wire::DecodePeerMessage(**verbose);
    if (!again.ok()) __builtin_trap();
    auto reread = wire::ReadRemoteUpdate(*again->body, again->from);
    if (!reread.ok() || reread->id != update->id || reread->result != update->result ||
        reread->checkpoint != update->checkpoint ||
        reread->events.size() != update->events.size()) {
      __builtin_trap();
    }
  }
  auto body = MapReader::From(*msg->body, "body");
  if (!body.ok()) return 0;
  std::optional<MapReader> intent;
  if (body->OptMap("intent", &intent).ok() && intent) {
    IntentRecord r;
    (void)ReadIntentFields(*intent, &r);
    for (std::string_view key : {"payload", "checkpoint"}) {
      if (const msgpack::object* o = intent->Find(key)) {
        if (CheckJsonValue(key, *o).ok()) (void)Pack(*o);
      }
    }
  }
  std::string text;
  (void)body->OptString("action", &text);
  (void)body->OptString("intent_id", &text);
  return 0;
}
