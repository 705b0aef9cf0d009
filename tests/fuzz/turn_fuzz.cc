// libFuzzer target: whole turns. The input is a script of steps run against a real Engine and
// AgentService over a fresh LMDB store (one per input): agent requests decoded from fuzzed
// frames and handled in a write transaction, deliveries, the clock moving (timers, lease
// expiries), and failed turns rolled back. After every step the invariants are checked, and a
// breach stops the run (__builtin_trap):
//
//   - every intent stored can be read, and its payload, checkpoint and result decode and can
//     be shown as JSON;
//   - an intent's history moves only along the lifecycle table (node/lifecycle.h), and ends at
//     the status its record has;
//   - its events are numbered 1, 2, ... up to the record's seq, and the seq never goes back.
//
// A step is one byte of kind, two of length (little-endian), then that many bytes:
//   kind % 4 == 0  a request frame. A fixstr "@@k" (bytes a3 40 40 k) in it becomes the id of
//                  the (k % 10)th intent sent so far, so that requests can name real intents;
//   kind % 4 == 1  the clock moves by the first byte times 100 ms; timers and leases fire;
//   kind % 4 == 2  the next intent for agent://acme/prod/worker is delivered;
//   kind % 4 == 3  a turn whose writes are thrown away (Rollback), as after a failed commit.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/msgpack_io.h"
#include "node/agent_service.h"
#include "node/engine.h"
#include "node/lifecycle.h"
#include "node/receivers.h"
#include "node/waiters.h"
#include "storage/store.h"
#include "wire/agent_protocol.h"

namespace handoff::node {
namespace {

constexpr const char* kWorker = "agent://acme/prod/worker";
constexpr size_t kMaxSteps = 64;

const std::string& WorkDir() {
  static const std::string dir = [] {
    char name[] = "/tmp/handoff-turn-fuzz-XXXXXX";
    if (::mkdtemp(name) == nullptr) std::abort();
    return std::string(name);
  }();
  return dir;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Harness {
  Harness() : clock(1'700'000'000'000) {
    const std::string dir = WorkDir() + "/data";
    std::filesystem::remove_all(dir);
    storage::EnvOptions env;
    env.map_size = 64 << 20;
    env.sync = false;
    auto opened = storage::Store::Open(dir, env, "node-a");
    if (!opened.ok()) std::abort();
    store = std::move(opened).value();
    EngineOptions options;
    options.node_name = "node-a";
    options.default_lease_ms = 1000;
    options.max_payload_bytes = 4096;
    engine = std::make_unique<Engine>(*store, clock, options);
    if (!engine->Recover().ok()) std::abort();
    info.name = "node-a";
    service =
        std::make_unique<AgentService>(*engine, receivers, waiters, info, stats, store->env());
  }

  // One turn: `fn` in a write transaction, committed if it and the flush succeed.
  void Turn(const std::function<Status(Txn&, Batch&)>& fn, bool keep = true) {
    auto txn = store->BeginWrite();
    if (!txn.ok()) std::abort();
    Batch batch;
    Status s = fn(*txn, batch);
    if (s.ok()) s = engine->Flush(*txn, batch);
    if (s.ok() && keep) s = txn->Commit();
    if (!s.ok() || !keep) {
      txn->Abort();
      Check(engine->Rollback().ok());
      return;
    }
    engine->Commit(batch);
  }

  // The invariants, over every intent stored.
  void Verify() {
    auto txn = store->BeginRead();
    Check(txn.ok());
    ListFilter all;
    all.limit = 100'000;
    std::vector<IntentRecord> records;
    Check(engine->List(*txn, all, &records).ok());
    for (const IntentRecord& listed : records) {
      IntentView view;
      Check(engine->Get(*txn, listed.id, &view).ok());
      for (const std::string* blob : {&view.payload, &view.checkpoint, &view.result}) {
        if (blob->empty()) continue;
        auto decoded = Unpack(*blob);
        Check(decoded.ok());
        Check(CheckJsonValue("stored", decoded->get()).ok());
      }
      const IntentRecord& r = view.record;
      auto seen = last_seen.find(r.id);
      if (seen != last_seen.end()) Check(r.seq >= seen->second);
      last_seen[r.id] = r.seq;
      // The history: numbered 1..seq, each status change one the table allows, ending at the
      // record's status.
      std::vector<EventRecord> events;
      Check(engine->Events(*txn, r.id, 0, 100'000, &events).ok());
      Check(!events.empty() && events.back().seq == r.seq && events.back().status == r.status);
      for (size_t i = 0; i < events.size(); ++i) {
        Check(events[i].seq == i + 1);
        if (i > 0 && events[i].status != events[i - 1].status) {
          Check(CanTransition(events[i - 1].status, events[i].status));
        }
      }
    }
  }

  // "@@k" (as a msgpack fixstr) replaced with the id of the k-th intent sent.
  std::string Substitute(std::string_view frame) const {
    std::string out;
    for (size_t i = 0; i < frame.size(); ++i) {
      if (i + 3 < frame.size() && frame.substr(i, 3) == "\xa3@@" && !sent.empty()) {
        const std::string id = sent[static_cast<uint8_t>(frame[i + 3]) % 10 % sent.size()];
        out += '\xd9';
        out += static_cast<char>(id.size());
        out += id;
        i += 3;
        continue;
      }
      out += frame[i];
    }
    return out;
  }

  ManualClock clock;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<Engine> engine;
  ReceiverSet receivers;
  WaiterSet waiters;
  NodeInfo info;
  NodeStats stats;
  std::unique_ptr<AgentService> service;
  std::vector<std::string> sent;           // intent ids, in the order they were sent
  std::map<IntentId, uint32_t> last_seen;  // seq, as last verified
};

}  // namespace
}  // namespace handoff::node

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff;
  using namespace handoff::node;
  Harness h;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (size_t step = 0; step < kMaxSteps && in.size() >= 3; ++step) {
    const uint8_t kind = static_cast<uint8_t>(in[0]);
    const size_t n = static_cast<uint8_t>(in[1]) | static_cast<uint8_t>(in[2]) << 8;
    in.remove_prefix(3);
    const std::string_view body = in.substr(0, n);
    in.remove_prefix(body.size());
    switch (kind % 4) {
      case 0: {
        const std::string frame = h.Substitute(body);
        uint64_t rid = 0;
        auto request = wire::DecodeRequest(frame, &rid);
        if (!request.ok()) break;
        h.Turn([&](Txn& txn, Batch& batch) {
          auto reply = h.service->Handle(txn, batch, "conn-1", *request);
          if (reply) {
            auto decoded = wire::DecodeReply(*reply);
            Check(decoded.ok());
            Check(decoded->rid == request->rid);
            if (request->op == wire::op::kSend && decoded->status.ok()) {
              std::string id;
              if (decoded->body().OptString("intent_id", &id).ok() && !id.empty()) {
                h.sent.push_back(id);
              }
            }
          }
          return Status::OK();
        });
        h.service->TakeSendWaits();
        break;
      }
      case 1:
        h.clock.Advance(100 * (body.empty() ? 1 : static_cast<uint8_t>(body[0])));
        h.Turn([&](Txn& txn, Batch& batch) {
          HANDOFF_RETURN_IF_ERROR(h.engine->FireTimers(txn, batch, 64).status());
          return h.engine->ExpireLeases(txn, batch, 64).status();
        });
        break;
      case 2:
        h.Turn([&](Txn& txn, Batch& batch) {
          return h.engine->DeliverNext(txn, batch, kWorker).status();
        });
        break;
      case 3: {
        const std::string frame = h.Substitute(body);
        uint64_t rid = 0;
        auto request = wire::DecodeRequest(frame, &rid);
        h.Turn(
            [&](Txn& txn, Batch& batch) {
              if (request.ok()) (void)h.service->Handle(txn, batch, "conn-1", *request);
              return Status::OK();
            },
            /*keep=*/false);
        h.service->TakeSendWaits();
        break;
      }
    }
    h.Verify();
  }
  return 0;
}
