// base/: ids, units, names, timestamps, records (the msgpack helpers: msgpack_test.cc).

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "base/intent_id.h"
#include "base/logging.h"
#include "base/msgpack_io.h"
#include "base/names.h"
#include "base/records.h"
#include "base/time_format.h"
#include "base/units.h"

namespace handoff {
namespace {

TEST_CASE("TextFromOutsideCannotForgeALogLine") {
  char path[] = "/tmp/handoff-log-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(::dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  REQUIRE(InitLogging("info").ok());
  spdlog::error("refused a message from '{}'", "x\n2026-01-01T00:00:00.000 error FORGED\x1b[2J");
  spdlog::default_logger()->flush();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  const std::string log = text.str();
  CAPTURE(log);
  CHECK(std::count(log.begin(), log.end(), '\n') == 1);  // one line, however many it was sent
  CHECK(log.find("x\\x0a2026-01-01T00:00:00.000 error FORGED\\x1b[2J") != std::string::npos);
  CHECK(InitLogging("warn").ok());  // again: replaces the logger
}

TEST_CASE("IntentIdsAreTimeOrderedUuidV7s") {
  IntentId a = NewIntentId(1'700'000'000'000);
  IntentId b = NewIntentId(1'700'000'000'000);  // same millisecond
  IntentId c = NewIntentId(1'700'000'000'001);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(a.UnixMs() == 1'700'000'000'000);
  std::string text = a.ToString();
  CHECK(text.size() == 36);
  CHECK(text[14] == '7');                                          // version
  CHECK(std::string("89ab").find(text[19]) != std::string::npos);  // variant
  auto parsed = IntentId::Parse(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == a);
  auto upper = IntentId::Parse("0190F1C2-7B3A-7C4D-8E5F-0123456789AB");
  REQUIRE(upper.ok());
  CHECK(upper->ToString() == "0190f1c2-7b3a-7c4d-8e5f-0123456789ab");
  std::set<std::string> many;
  for (int i = 0; i < 10000; ++i) many.insert(NewIntentId(1'700'000'000'000).ToString());
  CHECK(many.size() == 10000);
}

TEST_CASE("IntentIdsDrawFreshRandomnessInEachThreadAndInAForkedChild") {
  // Ids take their random bytes from a pool per thread, refilled from the system a page at a
  // time: no two threads, and no parent and forked child, may hand out the same bytes. The
  // last 8 bytes are random but for the variant's two bits.
  auto random_part = [](const IntentId& id) {
    return id.ToString().substr(19);  // "vxxx-xxxxxxxxxxxx"
  };
  NewIntentId(1);  // the parent's pool is filled before the fork, as a sender's would be
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  constexpr int kIds = 600;  // more than one pool's worth (4096 / 16 = 256)
  if (child == 0) {
    ::close(fds[0]);
    std::string out;
    for (int i = 0; i < kIds; ++i) out += NewIntentId(2).ToString().substr(19) + "\n";
    const char* p = out.data();
    size_t left = out.size();
    while (left > 0) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) ::_exit(1);
      p += n;
      left -= static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::set<std::string> seen;
  for (int i = 0; i < kIds; ++i) seen.insert(random_part(NewIntentId(2)));
  std::vector<std::set<std::string>> per_thread(3);
  std::vector<std::thread> threads;
  for (auto& set : per_thread) {
    threads.emplace_back([&set, &random_part] {
      for (int i = 0; i < kIds; ++i) set.insert(random_part(NewIntentId(3)));
    });
  }
  for (auto& t : threads) t.join();
  std::string from_child;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) from_child.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::istringstream lines(from_child);
  size_t child_ids = 0;
  for (std::string line; std::getline(lines, line);) {
    ++child_ids;
    seen.insert(line);
  }
  CHECK(child_ids == kIds);
  for (const auto& set : per_thread) seen.insert(set.begin(), set.end());
  CHECK(seen.size() == 5 * kIds);  // all distinct
}

TEST_CASE("IntentIdsCompareAsTheirBytesSortInStorageKeys") {
  // operator< and == read the id as two big-endian words: they must agree with the byte order
  // of the keys LMDB sorts, whichever byte differs and whatever its high bit.
  std::mt19937_64 rng(20261205);
  auto id = [](const std::string& bytes) { return IntentId::FromBytes(bytes).value(); };
  for (int i = 0; i < 2000; ++i) {
    std::string x(IntentId::kSize, '\0');
    for (char& c : x) c = static_cast<char>(rng());
    std::string y = x;
    const size_t at = static_cast<size_t>(i) % IntentId::kSize;
    y[at] = static_cast<char>(rng());
    if (i % 3 == 0) y = x;              // equal ones too
    CHECK((id(x) < id(y)) == (x < y));  // std::string compares bytes as unsigned char
    CHECK((id(y) < id(x)) == (y < x));
    CHECK((id(x) == id(y)) == (x == y));
  }
}

TEST_CASE("MalformedIntentIdsAreRefused") {
  for (const char* bad :
       {"", "nope", "0190f1c2-7b3a-7c4d-8e5f-0123456789a", "0190f1c2-7b3a-7c4d-8e5f-0123456789abc",
        "0190f1c27b3a7c4d8e5f0123456789ab", "0190f1c2-7b3a-7c4d-8e5f-01234567890g",
        "0190f1c2_7b3a-7c4d-8e5f-0123456789ab"}) {
    CAPTURE(bad);
    CHECK(IntentId::Parse(bad).status().IsInvalidArgument());
  }
  // Any one character out of place: a digit that is not hex (or not ASCII), a dash moved.
  const std::string good = "0190f1c2-7b3a-7c4d-8e5f-0123456789ab";
  REQUIRE(IntentId::Parse(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {'x', '\xff', '-', ' '}) {
      if (c == good[i]) continue;
      std::string bad = good;
      bad[i] = c;
      CAPTURE(bad);
      CHECK(IntentId::Parse(bad).status().IsInvalidArgument());
    }
  }
  CHECK(IntentId::FromBytes("short").status().IsCorruption());
}

TEST_CASE("DurationsParseWithUnits") {
  CHECK(*ParseDurationMs("250ms") == 250);
  CHECK(*ParseDurationMs("2s") == 2000);
  CHECK(*ParseDurationMs("5m") == 300'000);
  CHECK(*ParseDurationMs("1h") == 3'600'000);
  CHECK(*ParseDurationMs("1d") == 86'400'000);
  CHECK(*ParseDurationMs("1.5s") == 1500);
  CHECK(*ParseDurationMs("3") == 3000);
  for (const char* bad : {"", "s", "fast", "5 parsecs", "-1s", "1e400s"}) {
    CAPTURE(bad);
    CHECK(ParseDurationMs(bad).status().IsInvalidArgument());
  }
  CHECK(FormatDurationMs(1500) == "1500ms");
  CHECK(FormatDurationMs(2000) == "2s");
  CHECK(FormatDurationMs(300'000) == "5m");
  CHECK(FormatDurationMs(3'600'000) == "1h");
}

TEST_CASE("SizesParseWithBinaryUnits") {
  CHECK(*ParseByteSize("4096") == 4096);
  CHECK(*ParseByteSize("64KiB") == 65536);
  CHECK(*ParseByteSize("1MiB") == 1048576);
  CHECK(*ParseByteSize("1gib") == (uint64_t{1} << 30));
  CHECK(ParseByteSize("lots").status().IsInvalidArgument());
  CHECK(ParseByteSize("3 furlongs").status().IsInvalidArgument());
  // Past what 64 bits hold: refused, never converted (float-cast-overflow under sanitize).
  CHECK(ParseByteSize("99999999999999999999TiB").status().message().find("too large") !=
        std::string::npos);
  CHECK(ParseByteSize("16777216TiB").status().IsInvalidArgument());  // 2^64
  CHECK(ParseDurationMs("99999999999999999999d").status().IsInvalidArgument());
  CHECK(FormatByteSize(1 << 20) == "1MiB");
}

TEST_CASE("AgentAddressesMustHaveThreeLowercaseSegments") {
  for (const char* good :
       {"agent://acme/prod/worker", "agent://a/b/c", "agent://my-org/env_1/x.y"}) {
    CAPTURE(good);
    CHECK(ValidateAgentAddress(good).ok());
  }
  for (const char* bad :
       {"", "agent://", "agent://acme/prod", "agent://acme/prod/worker/extra",
        "agent://Acme/prod/worker", "agent://acme//worker", "agent://acme/prod/",
        "http://acme/prod/worker", "agent://acme/prod/wor ker", "agent://acme/prod/w\xc3\xa9"}) {
    CAPTURE(bad);
    Status s = ValidateAgentAddress(bad);
    CHECK(s.IsInvalidArgument());
    CHECK(s.message().find("agent://<org>/<env>/<name>") != std::string::npos);
  }
  CHECK(ValidateAgentAddress("agent://a/b/" + std::string(300, 'x')).IsInvalidArgument());
}

TEST_CASE("IntentTypesAreIntentNameVersion") {
  for (const char* good : {"intent.handoff.process.v1", "intent.x.v12", "intent.a-b_c.v3"}) {
    CAPTURE(good);
    CHECK(ValidateIntentType(good).ok());
  }
  for (const char* bad : {"", "intent.v1", "intent..v1", "handoff.process.v1", "intent.x.v",
                          "intent.x.v0", "intent.x.v01", "intent.X.v1", "intent.x.1"}) {
    CAPTURE(bad);
    CHECK(ValidateIntentType(bad).IsInvalidArgument());
  }
  CHECK(ValidateNodeName("node-a").ok());
  CHECK(ValidateNodeName("Node A").IsInvalidArgument());
  CHECK(ValidateNodeName("").IsInvalidArgument());
}

TEST_CASE("TimestampsAreRfc3339Utc") {
  CHECK(FormatRfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(FormatRfc3339(1'764'000'000'123) == "2025-11-24T16:00:00.123Z");
  CHECK(*ParseRfc3339("2025-11-24T16:00:00.123Z") == 1'764'000'000'123);
  CHECK(*ParseRfc3339("2025-11-24T17:00:00+01:00") == 1'764'000'000'000);
  CHECK(ParseRfc3339("yesterday").status().IsInvalidArgument());
  CHECK(ParseRfc3339("2025-13-01T00:00:00Z").status().IsInvalidArgument());
}

TEST_CASE("RecordsRoundTrip") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.correlation_id = "corr";
  r.origin_node = "node-a";
  r.lease_ms = 1234;
  r.status = IntentStatus::kFailed;
  r.delivery_attempt = 3;
  r.has_checkpoint = true;
  r.error = ErrorInfo{"exit_status", "bad", true};
  r.created_at_ms = 1;
  r.updated_at_ms = 2;
  r.seq = 9;
  auto back = DecodeIntent(EncodeIntent(r));
  REQUIRE(back.ok());
  CHECK(back->id == r.id);
  CHECK(back->intent_type == r.intent_type);
  CHECK(back->correlation_id == "corr");
  CHECK(back->parent_id.empty());
  CHECK(back->lease_ms == 1234);
  CHECK(back->status == IntentStatus::kFailed);
  CHECK(back->delivery_attempt == 3);
  CHECK(back->has_checkpoint);
  CHECK(back->error == r.error);
  CHECK(back->seq == 9);

  EventRecord e;
  e.id = r.id;
  e.seq = 4;
  e.event_type = "intent.delivered";
  e.status = IntentStatus::kDelivered;
  e.at_ms = 77;
  e.node = "node-a";
  e.actor = "system";
  e.details = std::string("\x81\xa1\x61\x01", 4);  // {"a":1}
  auto eb = DecodeEvent(EncodeEvent(e));
  REQUIRE(eb.ok());
  CHECK(eb->seq == 4);
  CHECK(eb->event_type == "intent.delivered");
  CHECK(eb->status == IntentStatus::kDelivered);
  CHECK(eb->details == e.details);

  // Stored bytes that do not decode are corruption, whatever is wrong with them.
  CHECK(DecodeIntent("\x81\xa1\x61\x01").status().IsCorruption());  // no intent_id
  CHECK(DecodeIntent("garbage").status().IsCorruption());
  CHECK(DecodeEvent("\x90").status().IsCorruption());
}

// Every field of both records survives the stored form, including the optional parts.
TEST_CASE("StoredRecordsKeepEveryField") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.correlation_id = "corr";
  r.parent_id = "parent";
  r.origin_node = "node-a";
  r.target_node = "node-b";
  r.lease_ms = -5;
  r.status = IntentStatus::kTimedOut;
  r.waiting_reason = "approval";
  r.delivery_attempt = 7;
  r.has_checkpoint = true;
  r.error = ErrorInfo{"deadline_exceeded", "too late", false};
  r.created_at_ms = 1;
  r.updated_at_ms = 2;
  r.seq = 12;
  r.deadline_ms = 99;
  r.max_attempts = 4;
  r.retry_initial_ms = 250;
  r.retry_multiplier = 1.5;
  r.retry_max_ms = 9000;
  r.last_error = ErrorInfo{"exit_status", "crashed", true};
  r.idempotency_key = "key-1";
  r.reply_to = "agent://a/b/r";
  r.replay_of = "0190c0de-0000-7000-8000-000000000000";
  r.approval =
      Approval{"ship it?", {"yes", "no"}, "agent://a/b/c", 5, true, "yes", "fine", "operator", 6};
  r.remote_seq = uint64_t{1} << 40;
  r.last_audit_seq = (uint64_t{1} << 33) + 5;
  r.forward_seq = (uint64_t{1} << 35) + 9;
  const std::string stored = EncodeIntent(r);
  auto back = DecodeIntent(stored);
  REQUIRE(back.ok());
  CHECK(back->id == r.id);
  CHECK(back->intent_type == r.intent_type);
  CHECK(back->from_agent == r.from_agent);
  CHECK(back->to_agent == r.to_agent);
  CHECK(back->correlation_id == r.correlation_id);
  CHECK(back->parent_id == r.parent_id);
  CHECK(back->origin_node == r.origin_node);
  CHECK(back->target_node == r.target_node);
  CHECK(back->lease_ms == r.lease_ms);
  CHECK(back->status == r.status);
  CHECK(back->waiting_reason == r.waiting_reason);
  CHECK(back->delivery_attempt == r.delivery_attempt);
  CHECK(back->has_checkpoint);
  CHECK(back->error == r.error);
  CHECK(back->created_at_ms == 1);
  CHECK(back->updated_at_ms == 2);
  CHECK(back->seq == 12);
  CHECK(back->deadline_ms == 99);
  CHECK(back->max_attempts == 4);
  CHECK(back->retry_initial_ms == 250);
  CHECK(back->retry_multiplier == 1.5);
  CHECK(back->retry_max_ms == 9000);
  CHECK(back->last_error == r.last_error);
  CHECK(back->idempotency_key == r.idempotency_key);
  CHECK(back->reply_to == r.reply_to);
  CHECK(back->replay_of == r.replay_of);
  REQUIRE(back->approval.has_value());
  CHECK(back->approval->question == "ship it?");
  CHECK(back->approval->outcomes == std::vector<std::string>{"yes", "no"});
  CHECK(back->approval->requested_by == "agent://a/b/c");
  CHECK(back->approval->requested_at_ms == 5);
  CHECK(back->approval->mid_work);
  CHECK(back->approval->decision == "yes");
  CHECK(back->approval->comment == "fine");
  CHECK(back->approval->decided_by == "operator");
  CHECK(back->approval->decided_at_ms == 6);
  CHECK(back->remote_seq == r.remote_seq);
  CHECK(back->last_audit_seq == r.last_audit_seq);
  CHECK(back->forward_seq == r.forward_seq);

  // Version 4 (schema 4) writes integers and lengths as varints: a typical record is much
  // smaller than in version 3, with the same fields.
  CHECK(stored[0] == 0x04);
  const std::string v3 = EncodeStoredIntent(r, 3);
  CHECK(v3[0] == 0x03);
  CHECK(stored.size() + 100 < v3.size());
  auto third = DecodeIntent(v3);
  REQUIRE(third.ok());
  CHECK(EncodeIntent(*third) == stored);  // every field read back from version 3 as well
  // Version 2 (schema 2) ended before forward_seq: read with it 0, the rest the same.
  std::string v2 = v3.substr(0, v3.size() - 8);
  v2[0] = 0x02;
  CHECK(v2 == EncodeStoredIntent(r, 2));
  auto older = DecodeIntent(v2);
  REQUIRE(older.ok());
  CHECK(older->last_audit_seq == r.last_audit_seq);
  CHECK(older->forward_seq == 0);
  // Version 1 (schema 1) ended before last_audit_seq: read with it 0, the rest the same.
  std::string v1 = v3.substr(0, v3.size() - 16);
  v1[0] = 0x01;
  CHECK(v1 == EncodeStoredIntent(r, 1));
  auto old = DecodeIntent(v1);
  REQUIRE(old.ok());
  CHECK(old->remote_seq == r.remote_seq);
  CHECK(old->approval->decided_at_ms == 6);
  CHECK(old->last_audit_seq == 0);
  v1[0] = 0x05;  // a version this build does not know
  CHECK(DecodeIntent(v1).status().IsCorruption());

  // Every cut of the stored bytes, and a byte too many, is corruption, never a crash.
  for (const std::string& form : {stored, v3}) {
    for (size_t n = 0; n < form.size(); ++n) {
      CHECK(DecodeIntent(form.substr(0, n)).status().IsCorruption());
    }
    CHECK(DecodeIntent(form + "x").status().IsCorruption());
  }
  // The status byte: after the id, seven strings (one length byte each in version 4, 4 bytes
  // in version 3) and lease_ms (zigzag -5: one byte; 8 in version 3).
  const size_t strings = r.intent_type.size() + r.from_agent.size() + r.to_agent.size() +
                         r.correlation_id.size() + r.parent_id.size() + r.origin_node.size() +
                         r.target_node.size();
  std::string bad_status = stored;
  const size_t status_at = 1 + IntentId::kSize + 7 + strings + 1;
  REQUIRE(bad_status[status_at] == static_cast<char>(IntentStatus::kTimedOut));
  bad_status[status_at] = 42;
  CHECK(DecodeIntent(bad_status).status().IsCorruption());
  std::string bad_v3 = v3;
  bad_v3[1 + IntentId::kSize + 7 * 4 + strings + 8] = 42;
  CHECK(DecodeIntent(bad_v3).status().IsCorruption());
  // A varint that runs past 10 bytes, or past 32 bits where the field is 32 bits wide (the
  // first string's length), is corruption.
  const std::string head = stored.substr(0, 1 + IntentId::kSize);
  const std::string rest = stored.substr(1 + IntentId::kSize + 1);
  CHECK(DecodeIntent(head + std::string(11, '\xff') + rest).status().IsCorruption());
  CHECK(DecodeIntent(head + "\x80\x80\x80\x80\x10" + rest).status().IsCorruption());
  // Integers at their limits survive: the most negative and positive, and 64-bit unsigned.
  IntentRecord limits = r;
  limits.lease_ms = INT64_MIN;
  limits.deadline_ms = INT64_MAX;
  limits.remote_seq = UINT64_MAX;
  limits.delivery_attempt = UINT32_MAX;
  auto back_limits = DecodeIntent(EncodeIntent(limits));
  REQUIRE(back_limits.ok());
  CHECK(back_limits->lease_ms == INT64_MIN);
  CHECK(back_limits->deadline_ms == INT64_MAX);
  CHECK(back_limits->remote_seq == UINT64_MAX);
  CHECK(back_limits->delivery_attempt == UINT32_MAX);

  EventRecord e;
  e.id = r.id;
  e.seq = 4;
  e.event_type = "intent.completed";
  e.status = IntentStatus::kCompleted;
  e.at_ms = 77;
  e.node = "node-a";
  e.actor = "agent://a/b/d";
  e.details = std::string("\x81\xa1\x61\x01", 4);
  e.audit_seq = 31;
  e.prev_audit_seq = 29;
  const std::string stored_event = EncodeEvent(e);
  auto eb = DecodeEvent(stored_event);
  REQUIRE(eb.ok());
  CHECK(eb->id == e.id);
  CHECK(eb->seq == 4);
  CHECK(eb->event_type == e.event_type);
  CHECK(eb->status == e.status);
  CHECK(eb->at_ms == 77);
  CHECK(eb->node == e.node);
  CHECK(eb->actor == e.actor);
  CHECK(eb->details == e.details);
  CHECK(eb->audit_seq == 31);
  CHECK(eb->prev_audit_seq == 29);
  CHECK(stored_event[0] == 0x04);
  const std::string v2_event = EncodeStoredEvent(e, 2);
  CHECK(stored_event.size() + 20 < v2_event.size());
  auto second_event = DecodeEvent(v2_event);
  REQUIRE(second_event.ok());
  CHECK(EncodeEvent(*second_event) == stored_event);
  std::string v1_event = v2_event.substr(0, v2_event.size() - 8);
  v1_event[0] = 0x01;
  CHECK(v1_event == EncodeStoredEvent(e, 1));
  auto old_event = DecodeEvent(v1_event);
  REQUIRE(old_event.ok());
  CHECK(old_event->audit_seq == 31);
  CHECK(old_event->prev_audit_seq == 0);
  // The chain's link, read without decoding (a purge walks a history by it), in every form.
  for (const std::string& form : {stored_event, v2_event}) {
    IntentId owner;
    uint64_t prev = 1;
    REQUIRE(StoredEventLink(form, &owner, &prev).ok());
    CHECK(owner == e.id);
    CHECK(prev == 29);
    CHECK(StoredEventLink(form.substr(0, 10), &owner, &prev).IsCorruption());
    for (size_t n = 0; n < form.size(); ++n) {
      CHECK(DecodeEvent(form.substr(0, n)).status().IsCorruption());
    }
  }
  IntentId owner;
  uint64_t prev = 1;
  REQUIRE(StoredEventLink(v1_event, &owner, &prev).ok());
  CHECK(owner == e.id);
  CHECK(prev == 0);
  // prev_audit_seq stays 8 bytes wide and last in version 4, where StoredEventLink reads it.
  EventRecord far = e;
  far.prev_audit_seq = (uint64_t{1} << 56) + 3;
  REQUIRE(StoredEventLink(EncodeEvent(far), &owner, &prev).ok());
  CHECK(prev == far.prev_audit_seq);
}

// Data directories written before the binary stored form hold msgpack maps: still read.
TEST_CASE("RecordsStoredAsMsgpackMapsAreStillRead") {
  IntentRecord r;
  r.id = NewIntentId(1'700'000'000'000);
  r.intent_type = "intent.test.v1";
  r.from_agent = "agent://a/b/c";
  r.to_agent = "agent://a/b/d";
  r.origin_node = "node-a";
  r.status = IntentStatus::kWaiting;
  r.waiting_reason = "approval";
  r.seq = 3;
  r.approval = Approval{"ok?", {}, "agent://a/b/c", 5, false, "", "", "", 0};
  MsgWriter w;
  w.BeginMap();
  WriteIntentFields(w, r);
  w.EndMap();
  auto back = DecodeIntent(w.Release());
  REQUIRE(back.ok());
  CHECK(back->id == r.id);
  CHECK(back->status == IntentStatus::kWaiting);
  CHECK(back->waiting_reason == "approval");
  CHECK(back->seq == 3);
  REQUIRE(back->approval.has_value());
  CHECK(back->approval->question == "ok?");

  EventRecord e;
  e.id = r.id;
  e.seq = 2;
  e.event_type = "intent.submitted";
  e.status = IntentStatus::kSubmitted;
  e.node = "node-a";
  e.actor = "agent://a/b/c";
  MsgWriter ew;
  ew.BeginMap();
  WriteEventFields(ew, e);
  ew.Field("audit_seq", uint64_t{8});
  ew.EndMap();
  const std::string old_event = ew.Release();
  auto eb = DecodeEvent(old_event);
  REQUIRE(eb.ok());
  CHECK(eb->seq == 2);
  CHECK(eb->event_type == "intent.submitted");
  CHECK(eb->audit_seq == 8);
}

TEST_CASE("StatusNamesAndCodesRoundTrip") {
  for (int i = 0; i < kIntentStatusCount; ++i) {
    auto s = static_cast<IntentStatus>(i);
    CHECK(ParseIntentStatus(IntentStatusName(s)) == s);
  }
  CHECK(ParseIntentStatus("in_progress") == IntentStatus::kInProgress);
  CHECK(ParseIntentStatus("Completed") == IntentStatus::kCompleted);
  CHECK_FALSE(ParseIntentStatus("DONE").has_value());
  CHECK_FALSE(ParseIntentStatus("COMPLETE").has_value());
  CHECK_FALSE(ParseIntentStatus("COMPLETED ").has_value());
  CHECK_FALSE(ParseIntentStatus("").has_value());
  // ASCII letters only fold: '{' is not '[', a byte past 127 is not a letter.
  CHECK_FALSE(ParseIntentStatus("complete{").has_value());
  CHECK_FALSE(ParseIntentStatus("compl\xc9ted").has_value());
  for (int i = 0; i <= static_cast<int>(Code::kNotStored); ++i) {
    CHECK(CodeFromName(CodeName(static_cast<Code>(i))) == static_cast<Code>(i));
  }
  CHECK(CodeName(Code::kNotStored) == "not_stored");
  CHECK(Status::NotFound("x").ToString() == "not_found: x");
}

}  // namespace
}  // namespace handoff
