#include "base/records.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "base/varint.h"

namespace handoff {
namespace {

Status ReadStatus(const MapReader& m, std::string_view key, IntentStatus* out) {
  std::string_view name;
  HANDOFF_RETURN_IF_ERROR(m.OptStringView(key, &name));
  if (name.empty()) return Status::OK();
  auto parsed = ParseIntentStatus(name);
  if (!parsed) return Status::InvalidArgument("unknown status '" + std::string(name) + "'");
  *out = *parsed;
  return Status::OK();
}

Status ReadId(const MapReader& m, IntentId* out) {
  std::string_view text;
  HANDOFF_RETURN_IF_ERROR(m.StringView("intent_id", &text));
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

// The stored form of records: a version byte, then every field in a fixed order, strings
// length-prefixed, optional parts behind a presence byte. Records are encoded and decoded on
// every turn, and a msgpack map spent most of that on its ~30 field names; the stored form is
// private to a data directory (wire messages stay msgpack maps). Records written by earlier
// versions, as msgpack maps, are still read: a map never starts with a version byte.
//
// Versions 1 to 3 wrote integers and lengths fixed-width, little-endian. Version 2 (schema 2)
// added IntentRecord::last_audit_seq and EventRecord::prev_audit_seq at the end of each;
// version 1 records read with them 0, and Store's migration fills them in. Version 3 (schema
// 3) added IntentRecord::forward_seq at the end; events were still written as version 2, and
// intent records of version 1 or 2 read with it 0.
//
// Version 4 (schema 4), written for both records, has the fields of version 3 (intents) and
// 2 (events) in the same order, but integers and lengths as LEB128 varints (signed integers
// zigzag-encoded first): most are 0 or small, and an intent record's fixed-width integers and
// lengths were some 170 of its ~230 bytes in a typical record, logged and stored on every
// change. An event's prev_audit_seq stays 8 bytes, little-endian, last, so that a history
// walk reads its link without decoding the event (StoredEventLink).
//
// The order is written once, in the Fields functions below, and both directions follow it:
// BinWriter and BinReader each take every field type through operator(), one writing it and
// the other reading into it.
constexpr char kStoredV1 = 0x01;
constexpr char kStoredV2 = 0x02;
constexpr char kStoredV3 = 0x03;
constexpr char kStoredV4 = 0x04;

bool IsStoredForm(std::string_view bytes) {
  return !bytes.empty() && bytes[0] >= kStoredV1 && bytes[0] <= kStoredV4;
}

// A field kept 8 bytes wide, little-endian, in every version (an event's prev_audit_seq).
template <typename T>
struct Fixed64 {
  T& v;
};
template <typename T>
Fixed64<T> AsFixed64(T& v) {
  return {v};
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// Writes into a buffer sized up front (`reserve`, grown when a record outruns it), with a
// cursor: a record is some 30 small fields, and appending each to a std::string cost more
// than the encoding itself.
class BinWriter {
 public:
  BinWriter(size_t reserve, char version) : version_(version) {
    out_.resize(std::max<size_t>(reserve, 16));
    out_[used_++] = version;
  }
  std::string Release() {
    out_.resize(used_);
    return std::move(out_);
  }
  int version() const { return version_; }

  void operator()(bool v) { Byte(v ? 1 : 0); }
  void operator()(IntentStatus v) { Byte(static_cast<char>(v)); }
  void operator()(uint32_t v) { Integer(v); }
  void operator()(uint64_t v) { Integer(v); }
  void operator()(int64_t v) {
    if (version_ >= kStoredV4) {
      Varint(ZigZag(v));
    } else {
      Fixed(static_cast<uint64_t>(v));
    }
  }
  void operator()(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    Fixed(bits);
  }
  void operator()(Fixed64<const uint64_t> f) { Fixed(f.v); }
  void operator()(const IntentId& v) { Bytes(v.bytes()); }
  void operator()(const std::string& v) {
    Integer(static_cast<uint32_t>(v.size()));
    Bytes(v);
  }
  void operator()(const std::vector<std::string>& v) {
    Integer(static_cast<uint32_t>(v.size()));
    for (const std::string& s : v) (*this)(s);
  }
  template <typename T>
  void operator()(const std::optional<T>& v) {
    (*this)(v.has_value());
    if (v) Fields(*this, *v);
  }

 private:
  // Where the next `n` bytes go.
  char* Room(size_t n) {
    if (out_.size() - used_ < n) out_.resize(std::max(2 * out_.size(), used_ + n));
    return out_.data() + used_;
  }
  void Byte(char c) {
    *Room(1) = c;
    ++used_;
  }
  void Bytes(std::string_view b) {
    if (b.empty()) return;
    std::memcpy(Room(b.size()), b.data(), b.size());
    used_ += b.size();
  }
  template <typename T>
  void Integer(T v) {
    if (version_ >= kStoredV4) {
      Varint(v);
    } else {
      Fixed(v);
    }
  }
  template <typename T>
  void Fixed(T v) {
    char* p = Room(sizeof(T));
    for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<char>(v >> (8 * i));
    used_ += sizeof(T);
  }
  void Varint(uint64_t v) { used_ += PutVarint(Room(kMaxVarintBytes), v); }
  std::string out_;
  size_t used_ = 0;
  int version_;
};

// Reads what BinWriter wrote (after the version byte); every read checks the bounds, and the
// first failure sticks: the caller checks done() once at the end.
class BinReader {
 public:
  BinReader(std::string_view in, int version) : in_(in), version_(version) {}
  int version() const { return version_; }
  // Everything read, nothing left over.
  bool done() const { return ok_ && in_.empty(); }
  uint64_t U64() { return Fixed(8); }

  void operator()(bool& v) { v = Fixed(1) != 0; }
  void operator()(IntentStatus& v) {
    const uint64_t n = Fixed(1);
    if (n >= kIntentStatusCount) ok_ = false;
    v = static_cast<IntentStatus>(ok_ ? n : 0);
  }
  void operator()(uint32_t& v) { v = static_cast<uint32_t>(Integer(4)); }
  void operator()(uint64_t& v) { v = Integer(8); }
  void operator()(int64_t& v) {
    v = version_ >= kStoredV4 ? UnZigZag(Varint(8)) : static_cast<int64_t>(Fixed(8));
  }
  void operator()(double& v) {
    const uint64_t bits = Fixed(8);
    std::memcpy(&v, &bits, sizeof(v));
  }
  void operator()(Fixed64<uint64_t> f) { f.v = Fixed(8); }
  void operator()(IntentId& v) {
    if (!Take(IntentId::kSize)) return;
    auto id = IntentId::FromBytes(last_);
    if (id.ok()) v = *id;
    ok_ = ok_ && id.ok();
  }
  void operator()(std::string& v) {
    const auto n = static_cast<size_t>(Integer(4));
    if (Take(n)) v.assign(last_);
  }
  void operator()(std::vector<std::string>& v) {
    const uint64_t n = Integer(4);
    for (uint64_t i = 0; i < n && ok_; ++i) (*this)(v.emplace_back());
  }
  template <typename T>
  void operator()(std::optional<T>& v) {
    bool present = false;
    (*this)(present);
    if (present) Fields(*this, v.emplace());
  }

 private:
  bool Take(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    last_ = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  // An integer `width` bytes wide in versions 1 to 3, a varint that must fit it in 4.
  uint64_t Integer(size_t width) { return version_ >= kStoredV4 ? Varint(width) : Fixed(width); }
  uint64_t Fixed(size_t n) {
    if (!Take(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(last_[i])} << (8 * i);
    return v;
  }
  // A varint of at most `width` bytes' worth: one cut short, longer than 10 bytes or over the
  // width fails the read.
  uint64_t Varint(size_t width) {
    uint64_t v = 0;
    if (ok_ && GetVarint(&in_, &v) && (width >= 8 || v >> (8 * width) == 0)) return v;
    ok_ = false;
    return 0;
  }
  std::string_view in_, last_;
  int version_;
  bool ok_ = true;
};

// Io is BinWriter (with const records) or BinReader.
template <typename Io, typename E>
void Fields(Io& io, E& e) requires std::is_same_v<std::remove_const_t<E>, ErrorInfo> {
  io(e.code);
  io(e.message);
  io(e.retryable);
}

template <typename Io, typename A>
void Fields(Io& io, A& a) requires std::is_same_v<std::remove_const_t<A>, Approval> {
  io(a.question);
  io(a.outcomes);
  io(a.requested_by);
  io(a.requested_at_ms);
  io(a.mid_work);
  io(a.decision);
  io(a.comment);
  io(a.decided_by);
  io(a.decided_at_ms);
}

template <typename Io, typename R>
void Fields(Io& io, R& r) requires std::is_same_v<std::remove_const_t<R>, IntentRecord> {
  io(r.id);
  io(r.intent_type);
  io(r.from_agent);
  io(r.to_agent);
  io(r.correlation_id);
  io(r.parent_id);
  io(r.origin_node);
  io(r.target_node);
  io(r.lease_ms);
  io(r.status);
  io(r.waiting_reason);
  io(r.delivery_attempt);
  io(r.has_checkpoint);
  io(r.error);
  io(r.created_at_ms);
  io(r.updated_at_ms);
  io(r.seq);
  io(r.deadline_ms);
  io(r.max_attempts);
  io(r.retry_initial_ms);
  io(r.retry_multiplier);
  io(r.retry_max_ms);
  io(r.last_error);
  io(r.idempotency_key);
  io(r.reply_to);
  io(r.replay_of);
  io(r.approval);
  io(r.remote_seq);
  if (io.version() >= kStoredV2) io(r.last_audit_seq);
  if (io.version() >= kStoredV3) io(r.forward_seq);  // version 4: the same fields
}

template <typename Io, typename E>
void Fields(Io& io, E& e) requires std::is_same_v<std::remove_const_t<E>, EventRecord> {
  io(e.id);
  io(e.seq);
  io(e.event_type);
  io(e.status);
  io(e.at_ms);
  io(e.node);
  io(e.actor);
  io(e.details);
  io(e.audit_seq);
  if (io.version() >= kStoredV4) {
    io(AsFixed64(e.prev_audit_seq));
  } else if (io.version() >= kStoredV2) {
    io(e.prev_audit_seq);
  }
}

template <typename R>
std::string EncodeStored(const R& record, size_t reserve, char version) {
  BinWriter w(reserve, version);
  Fields(w, record);
  return w.Release();
}

template <typename R>
Result<R> DecodeStored(std::string_view bytes, std::string_view what) {
  BinReader in(bytes.substr(1), bytes[0]);  // after the version byte
  R record;
  Fields(in, record);
  if (!in.done()) return Status::Corruption(std::string(what) + ": truncated, overlong or invalid");
  return record;
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
  const bool node_event = e.id.IsZero();  // the node's own: no intent, no status
  w.Field("intent_id", node_event ? std::string_view() : e.id.ToText().view());
  w.Field("seq", e.seq);
  w.Field("event_type", e.event_type);
  w.Field("status", node_event ? std::string_view() : IntentStatusName(e.status));
  w.Field("at", e.at_ms);
  w.Field("node", e.node);
  w.Field("actor", e.actor);
  if (!e.details.empty()) w.FieldRaw("details", e.details);
}

std::string EncodeIntent(const IntentRecord& r) { return EncodeStoredIntent(r, kStoredV4); }

std::string EncodeEvent(const EventRecord& e) { return EncodeStoredEvent(e, kStoredV4); }

std::string EncodeStoredIntent(const IntentRecord& r, int version) {
  // At most ~190 bytes of fixed fields and length prefixes (version 3), then the strings
  // (the approval's, rarely there, may grow it once).
  return EncodeStored(r,
                      256 + r.intent_type.size() + r.from_agent.size() + r.to_agent.size() +
                          r.correlation_id.size() + r.parent_id.size() + r.origin_node.size() +
                          r.target_node.size(),
                      static_cast<char>(version));
}

std::string EncodeStoredEvent(const EventRecord& e, int version) {
  // At most 62 bytes of fixed fields and length prefixes (version 2), then the strings:
  // reserved whole, so that encoding allocates once.
  return EncodeStored(e,
                      64 + e.event_type.size() + e.node.size() + e.actor.size() + e.details.size(),
                      static_cast<char>(version));
}

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

Status ReadEventFields(const MapReader& m, EventRecord* e, bool node_events) {
  const msgpack::object* id = m.Find("intent_id");
  if (node_events && (id == nullptr || (id->type == msgpack::type::STR && id->via.str.size == 0))) {
    e->id = IntentId();
  } else {
    HANDOFF_RETURN_IF_ERROR(ReadId(m, &e->id));
  }
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
  if (IsStoredForm(bytes)) return DecodeStored<IntentRecord>(bytes, "intent record");
  auto handle = Unpack(bytes);
  if (!handle.ok()) return Status::Corruption("intent record: " + handle.status().message());
  auto m = MapReader::From(handle->get(), "intent record");
  if (!m.ok()) return Status::Corruption(m.status().message());
  IntentRecord r;
  Status s = ReadIntentFields(*m, &r);
  if (!s.ok()) return Status::Corruption("intent record: " + s.message());
  return r;
}

Status StoredEventLink(std::string_view bytes, IntentId* id, uint64_t* prev_audit_seq) {
  // Versions 2 and 4: the version byte, the id, ..., prev_audit_seq (8 bytes, last).
  if (!bytes.empty() && (bytes[0] == kStoredV2 || bytes[0] == kStoredV4) &&
      bytes.size() >= 1 + IntentId::kSize + 8) {
    auto parsed = IntentId::FromBytes(bytes.substr(1, IntentId::kSize));
    if (!parsed.ok()) return Status::Corruption("event record: a bad intent id");
    *id = *parsed;
    BinReader tail(bytes.substr(bytes.size() - 8), kStoredV2);
    *prev_audit_seq = tail.U64();
    return Status::OK();
  }
  HANDOFF_ASSIGN_OR_RETURN(EventRecord e, DecodeEvent(bytes));
  *id = e.id;
  *prev_audit_seq = e.prev_audit_seq;
  return Status::OK();
}

Result<EventRecord> DecodeEvent(std::string_view bytes) {
  if (IsStoredForm(bytes)) return DecodeStored<EventRecord>(bytes, "event record");
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
