// The batch half of Node: handing gathered turns to the Committer, sending what a batch held
// once it is durable (or failing its requests when it is not), the durable batches LMDB does
// not hold yet that every read goes through, and the room in the store those batches take.

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/units.h"
#include "node/node.h"

namespace handoff::node {
namespace {

// Counting free pages walks the freelist: near the limit, at most this often.
constexpr int64_t kSpaceCheckPeriodMs = 50;

}  // namespace

void Node::Held::Absorb(Held&& later) {
  for (size_t i = 0; i < batch.status_delta.size(); ++i) {
    batch.status_delta[i] += later.batch.status_delta[i];
  }
  auto append = [](auto& to, auto& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  append(batch.settled, later.batch.settled);
  append(batch.released, later.batch.released);
  for (const auto& [peer, seq] : later.batch.emitted) {
    batch.emitted[peer] = std::max(batch.emitted[peer], seq);
  }
  batch.purged += later.batch.purged;
  append(replies, later.replies);
  append(pushes, later.pushes);
  append(answers, later.answers);
  append(answered, later.answered);
  append(send_waits, later.send_waits);
  append(assigned, later.assigned);
  for (const auto& [peer, seq] : later.acks) acks[peer] = std::max(acks[peer], seq);
  append(requests, later.requests);
  append(reads, later.reads);
  append(undelivered, later.undelivered);
  write_requests += later.write_requests;
  turns += later.turns;
}

void Node::MaybeStartCommit() {
  if (logging_ != nullptr || next_ == nullptr) return;
  if (!next_->writes.empty()) {
    logging_ = std::move(next_);
    committer_->Start(&logging_->writes);
    return;
  }
  // Nothing to store, and nothing before it is pending: what it holds is durable already.
  std::unique_ptr<Pending> done = std::move(next_);
  SendHeld(*done);
}

void Node::SendHeld(Held& held) {
  Unhold(held.replies);
  // One list, so that a connection's replies, deliveries and answers can share a batch.
  std::vector<Outgoing> all;
  all.reserve(held.replies.size() + held.pushes.size() + held.answers.size());
  for (auto* part : {&held.replies, &held.pushes, &held.answers}) {
    all.insert(all.end(), std::make_move_iterator(part->begin()),
               std::make_move_iterator(part->end()));
    part->clear();
  }
  SendAll(std::move(all));
  AfterPeers(held.batch, held.acks);
}

void Node::ReleaseDurable() {
  // What OnCommitted does with a durable batch is safe in the middle of a turn: it sends what
  // the batch held (older than anything this turn says, so each connection's order holds),
  // releases receivers' credit, and keeps the batch's writes as a layer. The two things that
  // are not wait for the loop's next pass: a failed commit (it fails the turns gathered since,
  // this one among them) and dropping layers LMDB now holds (this turn's snapshot predates
  // them).
  if (logging_ != nullptr && committer_->TakeIfCommitted()) OnCommitted(Status::OK());
}

void Node::OnReport(storage::Committer::Report report) {
  if (report.durable || report.applied > 0) stats_.lmdb_commits = committer_->lmdb_commits();
  service_->set_store_fault(report.store);
  if (report.durable) OnCommitted(*report.durable);
  // The Committer applies batches in the order they became durable.
  for (; report.applied > 0 && !unapplied_.empty(); --report.applied) unapplied_.pop_front();
}

size_t Node::Below(std::array<const storage::WriteSet*, Txn::kMaxBelow>* below) const {
  size_t n = 0;
  if (logging_) (*below)[n++] = &logging_->writes;
  for (auto it = unapplied_.rbegin(); it != unapplied_.rend() && n < below->size(); ++it) {
    (*below)[n++] = &(*it)->writes;
  }
  if (n < (logging_ ? 1 : 0) + unapplied_.size()) {
    // The Committer holds at most kMaxHeld batches out of LMDB, and the loop takes its reports
    // before it starts another: more layers than a Txn reads is a bug, and reading fewer
    // would show stale data.
    spdlog::critical("{} write sets await LMDB; a transaction reads at most {}",
                     unapplied_.size() + (logging_ ? 1 : 0), below->size());
    std::abort();
  }
  return n;
}

Result<Txn> Node::BeginView() const {
  std::array<const storage::WriteSet*, Txn::kMaxBelow> below;
  const size_t layers = Below(&below);
  return Txn::BeginLayered(store_->env(), nullptr,
                           std::span<const storage::WriteSet* const>(below.data(), layers));
}

void Node::RebuildState() {
  auto view = BeginView();
  Status rebuilt = view.ok() ? engine_->Rollback(*view) : view.status();
  if (!rebuilt.ok()) spdlog::error("rebuilding state after a failure: {}", rebuilt.ToString());
  // Outbox entries the failed writes deleted are still there.
  for (const auto& link : links_) link->TrimFailed();
}

void Node::OnCommitted(const Status& s) {
  std::unique_ptr<Pending> done = std::move(logging_);
  if (!s.ok()) {
    ++stats_.failed_commits;
    if (s.IsResourceExhausted()) {
      last_space_check_ms_ = 0;
      free_bytes_ = 0;
    }
    size_t refused = done->requests.size() + (next_ ? next_->requests.size() : 0);
    spdlog::error("a commit failed and nothing of it was stored; {} request(s) refused: {}{}",
                  refused, s.ToString(),
                  s.IsResourceExhausted() || s.IsIOError()
                      ? " (check free disk space and [node] map_size)"
                      : "");
    // The turns gathered since were built on top of it: they fail with it. Nothing of them
    // took effect (the Committer withdraws a failed batch), so sending again is safe.
    const Status not_stored = NotStoredBecause(s);
    FailPending(*done, not_stored);
    if (next_) FailPending(*next_, not_stored);
    next_.reset();
    RebuildState();
    return;
  }
  ++stats_.commits;
  const auto took =
      static_cast<uint64_t>(committer_->last_apply_us() + committer_->last_commit_us());
  stats_.commit_us_total += took;
  stats_.commit_us_max = std::max(stats_.commit_us_max, took);
  commit_seconds_.Observe(static_cast<double>(took) / 1e6);
  fsync_seconds_.Observe(static_cast<double>(committer_->last_commit_us()) / 1e6);
  batch_size_.Observe(static_cast<double>(done->write_requests));
  stats_.writes += done->write_requests;
  stats_.log_bytes += committer_->last_log_bytes();
  stats_.deliveries += done->pushes.size();
  stats_.purged += done->batch.purged;
  for (const IntentId& id : done->batch.released) receivers_.Release(id);
  SendHeld(*done);
  // Its writes stay a layer until the Committer has applied them to LMDB; what it held is
  // sent and goes now.
  static_cast<Held&>(*done) = Held();
  unapplied_.push_back(std::move(done));
}

void Node::FinishCommits(bool drain) {
  while (logging_ != nullptr) OnReport(committer_->Wait());
  MaybeStartCommit();
  while (logging_ != nullptr) OnReport(committer_->Wait());
  if (drain) OnReport(committer_->Drain());
}

Status Node::NotStoredBecause(const Status& cause) {
  // A full map is a capacity, not a passing fault: it keeps resource_exhausted, which the
  // agents do not retry (a result bigger than the map would be sent forever).
  if (cause.IsResourceExhausted()) {
    return Status::ResourceExhausted(cause.message() + "; nothing of this request took effect");
  }
  return Status::NotStored("the daemon could not store this request (" + cause.ToString() +
                           "); nothing of it took effect: send it again once the disk takes "
                           "writes");
}

void Node::Reread(std::vector<Incoming>&& reads, const Status& why) {
  // A read that keeps landing in failing turns is told so rather than asked forever.
  constexpr uint32_t kMaxFailedTurns = 3;
  for (Incoming& read : reads) {
    if (++read.failed_turns <= kMaxFailedTurns) {
      reread_.push_back(std::move(read));
      continue;
    }
    const std::string_view frame(static_cast<const char*>(read.frame.data()), read.frame.size());
    const uint64_t rid = PeekTopLevelUint(frame, "rid").value_or(0);
    SendAll({Outgoing{read.routing_id, wire::EncodeErrorReply(rid, why), {}, false}});
  }
}

void Node::FailPending(Held& p, const Status& why) {
  Unhold(p.replies);  // never sent: errors go instead
  for (const IntentId& id : p.assigned) receivers_.Release(id);
  for (Waiter& w : p.answered) waiters_.Add(std::move(w));
  // Their sends were not stored: their waits go (after the re-parking above, which may hold
  // one answered at once), and only the sends' error replies are sent.
  for (const Waiter& w : p.send_waits) waiters_.Remove(w);
  undelivered_.insert(undelivered_.end(), p.undelivered.begin(), p.undelivered.end());
  for (const auto& [routing_id, rid] : p.requests) {
    SendAll({Outgoing{routing_id, wire::EncodeErrorReply(rid, why), {}, false}});
  }
  // Their replies were read from what the failed writes had changed: asked again.
  Reread(std::move(p.reads), why);
}

uint64_t Node::PendingBytes() const {
  uint64_t bytes = 0;
  if (logging_) bytes += logging_->writes.bytes();
  for (const auto& p : unapplied_) bytes += p->writes.bytes();
  if (next_) bytes += next_->writes.bytes();
  return bytes;
}

void Node::CheckSpace(const Txn& txn) {
  auto high = store_->env().UsedBytes();
  if (!high.ok()) return;
  const uint64_t map = options_.map_size;
  const uint64_t margin = std::max<uint64_t>(map / 20, 256 << 10);
  uint64_t live = 0;
  for (int i = 0; i < kIntentStatusCount; ++i) {
    if (!IsTerminal(static_cast<IntentStatus>(i))) {
      live += static_cast<uint64_t>(std::max<int64_t>(0, engine_->status_counts()[i]));
    }
  }
  const uint64_t set_aside = margin + live * kIntentSpaceEstimate;
  auto room = [&](uint64_t in_use) {
    return map > in_use + set_aside ? map - in_use - set_aside : 0;
  };
  // Counting free pages walks LMDB's freelist: only when the high-water mark says room is
  // getting short, and then at most every kSpaceCheckPeriodMs.
  const int64_t now = options_.clock->NowMs();
  if (room(*high) < map / 4 && now - last_space_check_ms_ >= kSpaceCheckPeriodMs) {
    last_space_check_ms_ = now;
    auto free = txn.FreeBytes();
    if (free.ok()) {
      free_bytes_ = *free;
    } else {
      spdlog::warn("cannot measure free space: {}", free.status().ToString());
    }
  } else if (room(*high) >= map / 4) {
    free_bytes_ = 0;  // not needed: the high-water mark alone leaves room
  }
  // What the pending turns will add is not in the high-water mark yet; B-tree pages take about
  // twice the bytes written.
  const uint64_t in_use = (*high > free_bytes_ ? *high - free_bytes_ : 0) + 2 * PendingBytes();
  stats_.space_in_use = in_use;
  // A warning while there is time to act: once a fifth of the map is all that is left for new
  // sends, again after it had grown back past a quarter.
  if (!nearly_full_warned_ && room(in_use) < map / 5) {
    nearly_full_warned_ = true;
    spdlog::warn(
        "the store is nearing its map_size: {} in use and {} set aside for {} live intents, of "
        "map_size {}; new sends are refused once it is full. Purge ended intents (handoffctl "
        "purge, a shorter retention) or raise map_size",
        FormatByteSize(in_use), FormatByteSize(set_aside), live, FormatByteSize(map));
  } else if (nearly_full_warned_ && room(in_use) > map / 4) {
    nearly_full_warned_ = false;
  }
  const bool was_refusing = refusing_sends_;
  refusing_sends_ = room(in_use) < kIntentSpaceEstimate;
  if (refusing_sends_ && !was_refusing) {
    spdlog::warn(
        "the store is full ({} of map_size {} in use, {} live intents): refusing new sends "
        "until ended intents are purged or map_size is raised",
        FormatByteSize(in_use), FormatByteSize(map), live);
  } else if (!refusing_sends_ && was_refusing) {
    spdlog::info("the store has room again ({} of map_size {} in use): accepting new sends",
                 FormatByteSize(in_use), FormatByteSize(map));
  }
  service_->set_send_budget(room(in_use));
}

}  // namespace handoff::node
