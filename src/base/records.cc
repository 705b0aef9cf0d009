#include "base/records.h"

#include <cstdint>
#include <cstring>

namespace handoff {
namespace {

Status ReadStatus(const MapReader& m, std::string_view key, IntentStatus* out) {
  std::string name;
  HANDOFF_RETURN_IF_ERROR(m.OptString(key, &name));
  if (name.empty()) return Status::OK();
  auto parsed = ParseIntentStatus(name);
  if (!parsed) return Status::InvalidArgument("unknown status '" + name + "'");
  *out = *parsed;
  return Status::OK();
}

Status ReadId(const MapReader& m, IntentId* out) {
  std::string text;
  HANDOFF_RETURN_IF_ERROR(m.String("intent_id", &text));
  HANDOFF_ASSIGN_OR_RETURN(*out, IntentId::Parse(text));
  return Status::OK();
}

template <typename T>
Status ReadUint32(const MapReader& m, std::string_view key, T* out) {
  uint64_t v = *out;
  HANDOFF_RETURN_IF_ERROR(m.OptUint(key, &v));
  if (v > UINT32_MAX) return Status::InvalidArgument("field '" + std::string(key) + "' too large");
  *out = static_cast<T>(v);
  return Status::OK();
}

// The stored form of records: a version byte, then every field in a fixed order, integers
// little-endian and strings length-prefixed. Records are encoded and decoded on every turn,
// and a msgpack map spent most of that on its ~30 field names; the stored form is private to
// a data directory (wire messages stay msgpack maps). Records written by earlier versions, as
// msgpack maps, are still read: a map never starts with kStoredV1.
constexpr char kStoredV1 = 0x01;

class BinWriter {
 public:
  explicit BinWriter(size_t reserve) { out_.reserve(reserve); }
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void U32(uint32_t v) { Fixed(v); }
  void U64(uint64_t v) { Fixed(v); }
  void I64(int64_t v) { Fixed(static_cast<uint64_t>(v)); }
  void F64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    Fixed(bits);
  }
  void Str(std::string_view v) {
    U32(static_cast<uint32_t>(v.size()));
    out_.append(v);
  }
  void Raw(std::string_view v) { out_.append(v); }
  std::string Release() { return std::move(out_); }

 private:
  template <typename T>
  void Fixed(T v) {
    char buf[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) buf[i] = static_cast<char>(v >> (8 * i));
    out_.append(buf, sizeof(T));
  }
  std::string out_;
};

// Reads what BinWriter wrote; every read checks the bounds, and the first failure sticks.
class BinReader {
 public:
  explicit BinReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  void Fail() { ok_ = false; }

  uint8_t U8() { return Take(1) ? static_cast<uint8_t>(last_[0]) : 0; }
  bool Bool() { return U8() != 0; }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  int64_t I64() { return static_cast<int64_t>(Fixed(8)); }
  double F64() {
    uint64_t bits = Fixed(8);
    double v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }
  void Str(std::string* out) {
    uint32_t n = U32();
    if (Take(n)) out->assign(last_);
  }
  std::string_view Raw(size_t n) { return Take(n) ? last_ : std::string_view(); }

 private:
  bool Take(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      last_ = {};
      return false;
    }
    last_ = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  uint64_t Fixed(size_t n) {
    if (!Take(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(last_[i])} << (8 * i);
    return v;
  }
  std::string_view in_, last_;
  bool ok_ = true;
};

void PutError(BinWriter& w, const std::optional<ErrorInfo>& e) {
  w.Bool(e.has_value());
  if (!e) return;
  w.Str(e->code);
  w.Str(e->message);
  w.Bool(e->retryable);
}

void GetError(BinReader& r, std::optional<ErrorInfo>* out) {
  if (!r.Bool()) return;
  ErrorInfo e;
  r.Str(&e.code);
  r.Str(&e.message);
  e.retryable = r.Bool();
  *out = std::move(e);
}

void GetStatus(BinReader& r, IntentStatus* out) {
  const uint8_t v = r.U8();
  if (v >= kIntentStatusCount) {
    r.Fail();
    return;
  }
  *out = static_cast<IntentStatus>(v);
}

Result<IntentId> GetId(BinReader& r) {
  std::string_view bytes = r.Raw(IntentId::kSize);
  if (!r.ok()) return Status::Corruption("truncated");
  return IntentId::FromBytes(bytes);
}

std::string EncodeStoredIntent(const IntentRecord& r) {
  BinWriter w(256 + r.intent_type.size() + r.from_agent.size() + r.to_agent.size());
  w.U8(static_cast<uint8_t>(kStoredV1));
  w.Raw(r.id.bytes());
  w.Str(r.intent_type);
  w.Str(r.from_agent);
  w.Str(r.to_agent);
  w.Str(r.correlation_id);
  w.Str(r.parent_id);
  w.Str(r.origin_node);
  w.Str(r.target_node);
  w.I64(r.lease_ms);
  w.U8(static_cast<uint8_t>(r.status));
  w.Str(r.waiting_reason);
  w.U32(r.delivery_attempt);
  w.Bool(r.has_checkpoint);
  PutError(w, r.error);
  w.I64(r.created_at_ms);
  w.I64(r.updated_at_ms);
  w.U32(r.seq);
  w.I64(r.deadline_ms);
  w.U32(r.max_attempts);
  w.I64(r.retry_initial_ms);
  w.F64(r.retry_multiplier);
  w.I64(r.retry_max_ms);
  PutError(w, r.last_error);
  w.Str(r.idempotency_key);
  w.Str(r.reply_to);
  w.Str(r.replay_of);
  w.Bool(r.approval.has_value());
  if (r.approval) {
    const Approval& a = *r.approval;
    w.Str(a.question);
    w.U32(static_cast<uint32_t>(a.outcomes.size()));
    for (const std::string& o : a.outcomes) w.Str(o);
    w.Str(a.requested_by);
    w.I64(a.requested_at_ms);
    w.Bool(a.mid_work);
    w.Str(a.decision);
    w.Str(a.comment);
    w.Str(a.decided_by);
    w.I64(a.decided_at_ms);
  }
  w.U64(r.remote_seq);
  return w.Release();
}

Result<IntentRecord> DecodeStoredIntent(std::string_view bytes) {
  BinReader in(bytes.substr(1));
  IntentRecord r;
  HANDOFF_ASSIGN_OR_RETURN(r.id, GetId(in));
  in.Str(&r.intent_type);
  in.Str(&r.from_agent);
  in.Str(&r.to_agent);
  in.Str(&r.correlation_id);
  in.Str(&r.parent_id);
  in.Str(&r.origin_node);
  in.Str(&r.target_node);
  r.lease_ms = in.I64();
  GetStatus(in, &r.status);
  in.Str(&r.waiting_reason);
  r.delivery_attempt = in.U32();
  r.has_checkpoint = in.Bool();
  GetError(in, &r.error);
  r.created_at_ms = in.I64();
  r.updated_at_ms = in.I64();
  r.seq = in.U32();
  r.deadline_ms = in.I64();
  r.max_attempts = in.U32();
  r.retry_initial_ms = in.I64();
  r.retry_multiplier = in.F64();
  r.retry_max_ms = in.I64();
  GetError(in, &r.last_error);
  in.Str(&r.idempotency_key);
  in.Str(&r.reply_to);
  in.Str(&r.replay_of);
  if (in.Bool()) {
    Approval a;
    in.Str(&a.question);
    const uint32_t outcomes = in.U32();
    for (uint32_t i = 0; i < outcomes && in.ok(); ++i) in.Str(&a.outcomes.emplace_back());
    in.Str(&a.requested_by);
    a.requested_at_ms = in.I64();
    a.mid_work = in.Bool();
    in.Str(&a.decision);
    in.Str(&a.comment);
    in.Str(&a.decided_by);
    a.decided_at_ms = in.I64();
    r.approval = std::move(a);
  }
  r.remote_seq = in.U64();
  if (!in.done()) return Status::Corruption("truncated or overlong");
  return r;
}

std::string EncodeStoredEvent(const EventRecord& e) {
  BinWriter w(64 + e.event_type.size() + e.node.size() + e.actor.size() + e.details.size());
  w.U8(static_cast<uint8_t>(kStoredV1));
  w.Raw(e.id.bytes());
  w.U32(e.seq);
  w.Str(e.event_type);
  w.U8(static_cast<uint8_t>(e.status));
  w.I64(e.at_ms);
  w.Str(e.node);
  w.Str(e.actor);
  w.Str(e.details);
  w.U64(e.audit_seq);
  return w.Release();
}

Result<EventRecord> DecodeStoredEvent(std::string_view bytes) {
  BinReader in(bytes.substr(1));
  EventRecord e;
  HANDOFF_ASSIGN_OR_RETURN(e.id, GetId(in));
  e.seq = in.U32();
  in.Str(&e.event_type);
  GetStatus(in, &e.status);
  e.at_ms = in.I64();
  in.Str(&e.node);
  in.Str(&e.actor);
  in.Str(&e.details);
  e.audit_seq = in.U64();
  if (!in.done()) return Status::Corruption("truncated or overlong");
  return e;
}

}  // namespace

void WriteErrorInfo(MsgWriter& w, const ErrorInfo& error) {
  w.BeginMap();
  w.Field("code", error.code);
  w.Field("message", error.message);
  w.Field("retryable", error.retryable);
  w.EndMap();
}

Status ReadErrorInfo(const MapReader& m, ErrorInfo* out) {
  HANDOFF_RETURN_IF_ERROR(m.OptString("code", &out->code));
  HANDOFF_RETURN_IF_ERROR(m.OptString("message", &out->message));
  return m.OptBool("retryable", &out->retryable);
}

void WriteApproval(MsgWriter& w, const Approval& a) {
  w.BeginMap();
  w.Field("question", a.question);
  w.Key("outcomes");
  w.BeginArray();
  for (const std::string& o : a.outcomes) w.String(o);
  w.EndArray();
  w.Field("requested_by", a.requested_by);
  w.Field("requested_at", a.requested_at_ms);
  w.Field("mid_work", a.mid_work);
  if (a.decided()) {
    w.Field("decision", a.decision);
    w.Field("comment", a.comment);
    w.Field("decided_by", a.decided_by);
    w.Field("decided_at", a.decided_at_ms);
  }
  w.EndMap();
}

Status ReadApproval(const MapReader& m, Approval* out) {
  HANDOFF_RETURN_IF_ERROR(m.OptString("question", &out->question));
  if (const msgpack::object* outcomes = m.Find("outcomes")) {
    if (outcomes->type != msgpack::type::ARRAY) return WrongType("outcomes", "an array", *outcomes);
    for (uint32_t i = 0; i < outcomes->via.array.size; ++i) {
      const msgpack::object& o = outcomes->via.array.ptr[i];
      if (o.type != msgpack::type::STR) return WrongType("outcomes", "strings", o);
      out->outcomes.emplace_back(o.via.str.ptr, o.via.str.size);
    }
  }
  HANDOFF_RETURN_IF_ERROR(m.OptString("requested_by", &out->requested_by));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("requested_at", &out->requested_at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptBool("mid_work", &out->mid_work));
  HANDOFF_RETURN_IF_ERROR(m.OptString("decision", &out->decision));
  HANDOFF_RETURN_IF_ERROR(m.OptString("comment", &out->comment));
  HANDOFF_RETURN_IF_ERROR(m.OptString("decided_by", &out->decided_by));
  return m.OptInt("decided_at", &out->decided_at_ms);
}

void WriteIntentFields(MsgWriter& w, const IntentRecord& r) {
  w.Field("intent_id", r.id.ToText().view());
  w.Field("intent_type", r.intent_type);
  w.Field("from_agent", r.from_agent);
  w.Field("to_agent", r.to_agent);
  if (!r.correlation_id.empty()) w.Field("correlation_id", r.correlation_id);
  if (!r.parent_id.empty()) w.Field("parent_id", r.parent_id);
  w.Field("origin_node", r.origin_node);
  if (!r.target_node.empty()) w.Field("target_node", r.target_node);
  w.Field("lease_ms", r.lease_ms);
  w.Field("status", IntentStatusName(r.status));
  if (!r.waiting_reason.empty()) w.Field("waiting_reason", r.waiting_reason);
  w.Field("delivery_attempt", r.delivery_attempt);
  if (r.has_checkpoint) w.Field("has_checkpoint", true);
  if (r.error) {
    w.Key("error");
    WriteErrorInfo(w, *r.error);
  }
  w.Field("created_at", r.created_at_ms);
  w.Field("updated_at", r.updated_at_ms);
  w.Field("seq", r.seq);
  if (r.remote_seq != 0) w.Field("remote_seq", r.remote_seq);
  if (r.deadline_ms != 0) w.Field("deadline", r.deadline_ms);
  w.Field("max_attempts", r.max_attempts);
  if (r.retry_initial_ms != 0) {
    w.Field("retry_initial_ms", r.retry_initial_ms);
    w.Field("retry_multiplier", r.retry_multiplier);
    w.Field("retry_max_ms", r.retry_max_ms);
  }
  if (r.last_error) {
    w.Key("last_error");
    WriteErrorInfo(w, *r.last_error);
  }
  if (!r.idempotency_key.empty()) w.Field("idempotency_key", r.idempotency_key);
  if (!r.reply_to.empty()) w.Field("reply_to", r.reply_to);
  if (!r.replay_of.empty()) w.Field("replay_of", r.replay_of);
  if (r.approval) {
    w.Key("approval");
    WriteApproval(w, *r.approval);
  }
}

void WriteEventFields(MsgWriter& w, const EventRecord& e) {
  w.Field("intent_id", e.id.ToText().view());
  w.Field("seq", e.seq);
  w.Field("event_type", e.event_type);
  w.Field("status", IntentStatusName(e.status));
  w.Field("at", e.at_ms);
  w.Field("node", e.node);
  w.Field("actor", e.actor);
  if (!e.details.empty()) w.FieldRaw("details", e.details);
}

std::string EncodeIntent(const IntentRecord& r) { return EncodeStoredIntent(r); }

std::string EncodeEvent(const EventRecord& e) { return EncodeStoredEvent(e); }

Status ReadIntentFields(const MapReader& m, IntentRecord* r) {
  HANDOFF_RETURN_IF_ERROR(ReadId(m, &r->id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("intent_type", &r->intent_type));
  HANDOFF_RETURN_IF_ERROR(m.OptString("from_agent", &r->from_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("to_agent", &r->to_agent));
  HANDOFF_RETURN_IF_ERROR(m.OptString("correlation_id", &r->correlation_id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("parent_id", &r->parent_id));
  HANDOFF_RETURN_IF_ERROR(m.OptString("origin_node", &r->origin_node));
  HANDOFF_RETURN_IF_ERROR(m.OptString("target_node", &r->target_node));
  HANDOFF_RETURN_IF_ERROR(m.OptUint("remote_seq", &r->remote_seq));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("lease_ms", &r->lease_ms));
  HANDOFF_RETURN_IF_ERROR(ReadStatus(m, "status", &r->status));
  HANDOFF_RETURN_IF_ERROR(m.OptString("waiting_reason", &r->waiting_reason));
  HANDOFF_RETURN_IF_ERROR(ReadUint32(m, "delivery_attempt", &r->delivery_attempt));
  HANDOFF_RETURN_IF_ERROR(m.OptBool("has_checkpoint", &r->has_checkpoint));
  std::optional<MapReader> error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("error", &error));
  if (error) {
    ErrorInfo info;
    HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*error, &info));
    r->error = std::move(info);
  }
  HANDOFF_RETURN_IF_ERROR(m.OptInt("created_at", &r->created_at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("updated_at", &r->updated_at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("deadline", &r->deadline_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptString("idempotency_key", &r->idempotency_key));
  HANDOFF_RETURN_IF_ERROR(m.OptString("reply_to", &r->reply_to));
  HANDOFF_RETURN_IF_ERROR(m.OptString("replay_of", &r->replay_of));
  std::optional<MapReader> approval;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("approval", &approval));
  if (approval) {
    Approval a;
    HANDOFF_RETURN_IF_ERROR(ReadApproval(*approval, &a));
    r->approval = std::move(a);
  }
  HANDOFF_RETURN_IF_ERROR(ReadUint32(m, "max_attempts", &r->max_attempts));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("retry_initial_ms", &r->retry_initial_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptDouble("retry_multiplier", &r->retry_multiplier));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("retry_max_ms", &r->retry_max_ms));
  std::optional<MapReader> last_error;
  HANDOFF_RETURN_IF_ERROR(m.OptMap("last_error", &last_error));
  if (last_error) {
    ErrorInfo info;
    HANDOFF_RETURN_IF_ERROR(ReadErrorInfo(*last_error, &info));
    r->last_error = std::move(info);
  }
  return ReadUint32(m, "seq", &r->seq);
}

Status ReadEventFields(const MapReader& m, EventRecord* e) {
  HANDOFF_RETURN_IF_ERROR(ReadId(m, &e->id));
  HANDOFF_RETURN_IF_ERROR(ReadUint32(m, "seq", &e->seq));
  HANDOFF_RETURN_IF_ERROR(m.OptString("event_type", &e->event_type));
  HANDOFF_RETURN_IF_ERROR(ReadStatus(m, "status", &e->status));
  HANDOFF_RETURN_IF_ERROR(m.OptInt("at", &e->at_ms));
  HANDOFF_RETURN_IF_ERROR(m.OptString("node", &e->node));
  HANDOFF_RETURN_IF_ERROR(m.OptString("actor", &e->actor));
  if (const msgpack::object* details = m.Find("details")) e->details = Pack(*details);
  HANDOFF_RETURN_IF_ERROR(m.OptUint("audit_seq", &e->audit_seq));
  return Status::OK();
}

Result<IntentRecord> DecodeIntent(std::string_view bytes) {
  if (!bytes.empty() && bytes[0] == kStoredV1) {
    auto r = DecodeStoredIntent(bytes);
    if (!r.ok()) return Status::Corruption("intent record: " + r.status().message());
    return r;
  }
  auto handle = Unpack(bytes);
  if (!handle.ok()) return Status::Corruption("intent record: " + handle.status().message());
  auto m = MapReader::From(handle->get(), "intent record");
  if (!m.ok()) return Status::Corruption(m.status().message());
  IntentRecord r;
  Status s = ReadIntentFields(*m, &r);
  if (!s.ok()) return Status::Corruption("intent record: " + s.message());
  return r;
}

Result<uint64_t> StoredEventAuditSeq(std::string_view bytes) {
  if (!bytes.empty() && bytes[0] == kStoredV1) {
    // The stored form ends with it.
    if (bytes.size() < 1 + IntentId::kSize + 8) return Status::Corruption("event record: truncated");
    BinReader tail(bytes.substr(bytes.size() - 8));
    return tail.U64();
  }
  HANDOFF_ASSIGN_OR_RETURN(EventRecord e, DecodeEvent(bytes));
  return e.audit_seq;
}

Result<EventRecord> DecodeEvent(std::string_view bytes) {
  if (!bytes.empty() && bytes[0] == kStoredV1) {
    auto e = DecodeStoredEvent(bytes);
    if (!e.ok()) return Status::Corruption("event record: " + e.status().message());
    return e;
  }
  auto handle = Unpack(bytes);
  if (!handle.ok()) return Status::Corruption("event record: " + handle.status().message());
  auto m = MapReader::From(handle->get(), "event record");
  if (!m.ok()) return Status::Corruption(m.status().message());
  EventRecord e;
  Status s = ReadEventFields(*m, &e);
  if (!s.ok()) return Status::Corruption("event record: " + s.message());
  return e;
}

}  // namespace handoff
