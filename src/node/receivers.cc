#include "node/receivers.h"

#include <algorithm>
#include <cstdint>

namespace handoff::node {

bool ReceiverSet::Register(const std::string& routing_id, const std::string& address,
                           uint32_t credit, int64_t now_ms, bool batch) {
  Key key(routing_id, address);
  auto it = receivers_.find(key);
  if (it == receivers_.end()) {
    size_t addresses = 0;
    for (auto c = receivers_.lower_bound(Key(routing_id, ""));
         c != receivers_.end() && c->first.first == routing_id; ++c) {
      ++addresses;
    }
    if (addresses >= kMaxAddressesPerConnection) return false;
    it = receivers_.emplace(key, Receiver{routing_id, address, 0, {}}).first;
  }
  it->second.credit = credit;
  it->second.batch = batch;
  heard_.try_emplace(routing_id, INT64_MIN);
  Heard(routing_id, now_ms);
  return true;
}

void ReceiverSet::Heard(const std::string& routing_id, int64_t now_ms) {
  auto h = heard_.find(routing_id);
  if (h != heard_.end()) h->second = std::max(h->second, now_ms);
}

void ReceiverSet::HeardAbout(const IntentId& id, int64_t now_ms) {
  auto h = holder_.find(id);
  if (h != holder_.end()) Heard(h->second->routing_id, now_ms);
}

size_t ReceiverSet::DropSilent(int64_t before_ms) {
  std::vector<std::string> silent;
  for (const auto& [routing_id, heard] : heard_) {
    if (heard < before_ms) silent.push_back(routing_id);
  }
  for (const std::string& routing_id : silent) Remove(routing_id);
  return silent.size();
}

std::vector<IntentId> ReceiverSet::Remove(const std::string& routing_id) {
  std::vector<IntentId> held;
  auto it = receivers_.lower_bound(Key(routing_id, ""));
  while (it != receivers_.end() && it->first.first == routing_id) {
    for (const IntentId& id : it->second.held) {
      holder_.erase(id);
      held.push_back(id);
    }
    it = receivers_.erase(it);
  }
  heard_.erase(routing_id);
  return held;
}

void ReceiverSet::Assign(const std::string& routing_id, const std::string& address,
                         const IntentId& id) {
  auto it = receivers_.find(KeyLess::View(routing_id, address));
  if (it == receivers_.end()) return;
  it->second.held.insert(id);
  holder_[id] = &it->second;
}

void ReceiverSet::Release(const IntentId& id) {
  auto h = holder_.find(id);
  if (h == holder_.end()) return;
  h->second->held.erase(id);
  holder_.erase(h);
}

std::vector<Receiver*> ReceiverSet::WithRoom() {
  std::vector<Receiver*> all;
  for (auto& [id, r] : receivers_) {
    if (r.has_room()) all.push_back(&r);
  }
  if (all.empty()) return all;
  const size_t start = rotation_++ % all.size();
  std::rotate(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(start), all.end());
  return all;
}

}  // namespace handoff::node
