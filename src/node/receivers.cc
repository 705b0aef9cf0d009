#include "node/receivers.h"

namespace handoff::node {

void ReceiverSet::Register(const std::string& routing_id, const std::string& address,
                           uint32_t credit) {
  Receiver& r = receivers_[routing_id];
  r.routing_id = routing_id;
  r.address = address;
  r.credit = credit;
}

std::vector<IntentId> ReceiverSet::Remove(const std::string& routing_id) {
  std::vector<IntentId> held;
  auto it = receivers_.find(routing_id);
  if (it == receivers_.end()) return held;
  for (const IntentId& id : it->second.held) {
    holder_.erase(id);
    held.push_back(id);
  }
  receivers_.erase(it);
  return held;
}

void ReceiverSet::Assign(const std::string& routing_id, const IntentId& id) {
  auto it = receivers_.find(routing_id);
  if (it == receivers_.end()) return;
  it->second.held.insert(id);
  holder_[id] = routing_id;
}

void ReceiverSet::Release(const IntentId& id) {
  auto h = holder_.find(id);
  if (h == holder_.end()) return;
  auto it = receivers_.find(h->second);
  if (it != receivers_.end()) it->second.held.erase(id);
  holder_.erase(h);
}

std::vector<Receiver*> ReceiverSet::WithRoom() {
  std::vector<Receiver*> all;
  for (auto& [id, r] : receivers_) {
    if (r.has_room()) all.push_back(&r);
  }
  if (all.empty()) return all;
  std::vector<Receiver*> rotated;
  rotated.reserve(all.size());
  size_t start = rotation_++ % all.size();
  for (size_t i = 0; i < all.size(); ++i) rotated.push_back(all[(start + i) % all.size()]);
  return rotated;
}

}  // namespace handoff::node
