#include "support/peer_messages.h"

#include "wire/agent_protocol.h"

namespace handoff::testing {

IntentRecord ForwardableIntent(const std::string& to, const std::string& origin) {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.double.v1";
  r.from_agent = "agent://acme/test/sender";
  r.to_agent = to;
  r.origin_node = origin;
  r.lease_ms = 5000;
  r.status = IntentStatus::kSubmitted;
  r.created_at_ms = 1'700'000'000'000;
  r.max_attempts = 3;
  r.retry_initial_ms = 100;
  r.retry_multiplier = 2.0;
  r.retry_max_ms = 1000;
  return r;
}

std::string SmallPayload() {
  MsgWriter w;
  w.BeginMap();
  w.Field("n", int64_t{1});
  w.EndMap();
  return w.Release();
}

std::string IntentFrame(const std::string& from, uint64_t seq, const IntentRecord& r,
                        const std::string& payload) {
  wire::PeerMessageBuilder m(wire::peer_kind::kIntent, from, seq);
  m.w().Key("intent");
  wire::WriteIntent(m.w(), r, payload, {}, {});
  return m.Finish();
}

std::string UpdateFrame(const std::string& from, uint64_t seq, const wire::RemoteUpdate& u) {
  wire::PeerMessageBuilder m(wire::peer_kind::kUpdate, from, seq);
  wire::WriteRemoteUpdate(m.w(), u);
  return m.Finish();
}

std::string ControlFrame(const std::string& from, uint64_t seq, const std::string& id,
                         const std::string& action) {
  wire::PeerMessageBuilder m(wire::peer_kind::kControl, from, seq);
  m.w().Field("intent_id", id);
  m.w().Field("action", action);
  m.w().Field("actor", "agent://acme/rogue/actor");
  return m.Finish();
}

wire::RemoteUpdate StatusUpdate(const IntentId& id, const std::string& node,
                                const std::vector<IntentStatus>& statuses, uint32_t first) {
  wire::RemoteUpdate u;
  u.id = id;
  u.delivery_attempt = 1;
  for (IntentStatus s : statuses) {
    EventRecord e;
    e.id = id;
    e.seq = first++;
    e.event_type = s == IntentStatus::kCompleted ? "intent.completed" : "intent.progress";
    e.status = s;
    e.at_ms = 1'700'000'000'000;
    e.node = node;
    e.actor = "agent://acme/rogue/actor";
    u.events.push_back(e);
  }
  u.remote_seq = first - 1;
  u.status = statuses.back();
  return u;
}

}  // namespace handoff::testing
