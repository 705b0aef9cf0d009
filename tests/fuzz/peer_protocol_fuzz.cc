// libFuzzer target: one frame from a peer, through the decoders the daemon runs before a
// message reaches the engine: a batch split into its messages, the envelope, an intent's
// fields and an update (either form, and a compact one rewritten as a map), a control.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/msgpack_io.h"
#include "base/records.h"
#include "wire/peer_protocol.h"

namespace {

// Every map PackedJsonMap takes from `decoded_from` is what the long way stores.
void CheckPackedMaps(std::string_view decoded_from, const msgpack::object& o) {
  using namespace handoff;
  if (o.type == msgpack::type::ARRAY) {
    for (const msgpack::object& v : o.via.array) CheckPackedMaps(decoded_from, v);
  } else if (o.type == msgpack::type::MAP) {
    if (auto bytes = PackedJsonMap(decoded_from, o)) {
      if (!CheckJsonValue("v", o).ok() || *bytes != Pack(o)) __builtin_trap();
    }
    for (const msgpack::object_kv& kv : o.via.map) {
      CheckPackedMaps(decoded_from, kv.key);
      CheckPackedMaps(decoded_from, kv.val);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff;
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto batch = wire::DecodePeerMessages(frame);
  if (batch.ok() && (batch->empty() || batch->size() > wire::kMaxPeerBatchItems)) {
    __builtin_trap();
  }
  auto msg = wire::DecodePeerMessage(frame);
  if (!msg.ok() || msg->body == nullptr) return 0;
  CheckPackedMaps(msg->handle.bytes(), msg->handle.get());
  auto update = wire::ReadRemoteUpdate(*msg->body, msg->from);
  if (update.ok()) {
    // What a decoded update holds must decode again (it is stored as it is).
    for (const std::string& blob : {update->checkpoint, update->result}) {
      if (!blob.empty() && !Unpack(blob).ok()) __builtin_trap();
    }
  }
  IntentRecord intent;
  const msgpack::object *payload = nullptr, *checkpoint = nullptr;
  const bool intent_read =
      wire::ReadForwardedIntent(*msg->body, &intent, &payload, &checkpoint).ok();
  for (const msgpack::object* o : {payload, checkpoint}) {
    if (o != nullptr && CheckJsonValue("payload", *o).ok()) (void)Pack(*o);
  }
  // A compact message this node reads, rewritten for an older node, reads as the same one.
  auto verbose = wire::VerboseFrame(frame);
  if (verbose.ok() && verbose->has_value()) {
    auto again = wire::DecodePeerMessage(**verbose);
    if (!again.ok() || again->kind != msg->kind) __builtin_trap();
    if (msg->kind == wire::peer_kind::kUpdate) {
      auto reread = wire::ReadRemoteUpdate(*again->body, again->from);
      if (!update.ok() || !reread.ok() || reread->id != update->id ||
          reread->result != update->result || reread->checkpoint != update->checkpoint ||
          reread->events.size() != update->events.size()) {
        __builtin_trap();
      }
    } else {
      IntentRecord reread;
      const msgpack::object *p = nullptr, *c = nullptr;
      if (!intent_read || !wire::ReadForwardedIntent(*again->body, &reread, &p, &c).ok() ||
          reread.id != intent.id || reread.to_agent != intent.to_agent || p == nullptr ||
          Pack(*p) != Pack(*payload)) {
        __builtin_trap();
      }
    }
  }
  auto body = MapReader::From(*msg->body, "body");
  if (!body.ok()) return 0;
  std::string text;
  (void)body->OptString("action", &text);
  (void)body->OptString("intent_id", &text);
  return 0;
}
