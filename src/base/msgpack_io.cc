#include "base/msgpack_io.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace handoff {

void MsgWriter::CountItem() {
  if (depth_ > 0 && !frames_[depth_ - 1].is_map) ++frames_[depth_ - 1].count;
}

void MsgWriter::Open(bool is_map) {
  CountItem();
  if (depth_ == kMaxDepth) {
    // Our encoders nest a handful of levels; deeper is a bug, not input.
    std::fprintf(stderr, "MsgWriter: nesting deeper than %zu\n", kMaxDepth);
    std::abort();
  }
  frames_[depth_++] = {buffer_.used, 0, is_map};
  // map32/array32 with the count patched in Close.
  const char header[5] = {static_cast<char>(is_map ? 0xdf : 0xdd), 0, 0, 0, 0};
  buffer_.write(header, sizeof(header));
}

void MsgWriter::Close() {
  const Frame& frame = frames_[--depth_];
  char* p = buffer_.data.data() + frame.header_offset + 1;
  p[0] = static_cast<char>(frame.count >> 24);
  p[1] = static_cast<char>(frame.count >> 16);
  p[2] = static_cast<char>(frame.count >> 8);
  p[3] = static_cast<char>(frame.count);
}

void MsgWriter::BeginMap() { Open(true); }
void MsgWriter::BeginArray() { Open(false); }
void MsgWriter::EndMap() { Close(); }
void MsgWriter::EndArray() { Close(); }

void MsgWriter::WriteStr(std::string_view s) {
  // Every key and most values are fixstrs (up to 31 bytes): the header byte and the bytes in
  // one step, where msgpack's packer makes two writes (docs/performance.md, "Less work per round
  // trip").
  constexpr size_t kMaxFixStr = 31;
  if (s.size() <= kMaxFixStr) {
    char* p = buffer_.Room(1 + s.size());
    p[0] = static_cast<char>(0xa0 | s.size());
    if (!s.empty()) std::memcpy(p + 1, s.data(), s.size());
    buffer_.used += 1 + s.size();
    return;
  }
  packer_.pack_str(static_cast<uint32_t>(s.size()));
  packer_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void MsgWriter::Key(std::string_view key) {
  ++frames_[depth_ - 1].count;
  WriteStr(key);
}

void MsgWriter::String(std::string_view v) {
  CountItem();
  WriteStr(v);
}

void MsgWriter::Int(int64_t v) {
  CountItem();
  packer_.pack_int64(v);
}

void MsgWriter::Uint(uint64_t v) {
  CountItem();
  packer_.pack_uint64(v);
}

void MsgWriter::Bool(bool v) {
  CountItem();
  if (v) {
    packer_.pack_true();
  } else {
    packer_.pack_false();
  }
}

void MsgWriter::Double(double v) {
  CountItem();
  packer_.pack_double(v);
}

void MsgWriter::Nil() {
  CountItem();
  packer_.pack_nil();
}

void MsgWriter::Raw(std::string_view encoded) {
  if (encoded.empty()) {
    Nil();
    return;
  }
  CountItem();
  buffer_.write(encoded.data(), encoded.size());
}

namespace {

// Follows msgpack-c's parser (which keeps its own stack, so depth costs no recursion) and
// stops at the value of `key` in the top-level map.
class TopLevelUint : public msgpack::null_visitor {
 public:
  explicit TopLevelUint(std::string_view key) : key_(key) {}
  std::optional<uint64_t> found;

  bool start_map(uint32_t) { return Open(); }
  bool start_array(uint32_t) { return Open(); }
  bool end_map() { return Close(); }
  bool end_array() { return Close(); }
  bool start_map_key() {
    in_key_ = depth_ == 1;
    return true;
  }
  bool end_map_key() {
    in_key_ = false;
    return true;
  }
  bool visit_str(const char* v, uint32_t size) {
    if (in_key_) wanted_ = std::string_view(v, size) == key_;
    return true;
  }
  bool end_map_value() {
    if (depth_ == 1) wanted_ = false;
    return true;
  }
  bool visit_positive_integer(uint64_t v) {
    if (depth_ != 1 || !wanted_) return true;
    found = v;
    return false;  // done: stop parsing
  }
  void parse_error(size_t, size_t) {}
  void insufficient_bytes(size_t, size_t) {}

 private:
  bool Open() {
    if (depth_ == 0 && map_seen_) return false;  // only the first value counts
    ++depth_;
    map_seen_ = true;
    return true;
  }
  bool Close() {
    --depth_;
    return depth_ > 0;  // the top-level container ended: done
  }
  std::string_view key_;
  size_t depth_ = 0;
  bool map_seen_ = false;
  bool in_key_ = false;
  bool wanted_ = false;  // the current top-level value belongs to `key`
};

}  // namespace

std::optional<uint64_t> PeekTopLevelUint(std::string_view data, std::string_view key) {
  TopLevelUint visitor(key);
  size_t offset = 0;
  try {
    msgpack::parse(data.data(), data.size(), offset, visitor);
  } catch (const std::exception&) {
    // Whatever broke after the key was read does not matter here.
  }
  return visitor.found;
}

namespace {

// Decodes the value at `*offset` and moves `*offset` past it. `expected_bytes` is about how
// many bytes the value takes: its zone is sized by it.
Result<msgpack::object_handle> UnpackAt(std::string_view data, size_t* offset,
                                        const UnpackLimits& limits, size_t expected_bytes) {
  msgpack::unpack_limit limit(limits.max_container, limits.max_container, limits.max_string,
                              limits.max_string, limits.max_string, limits.max_depth);
  try {
    // The zone's first chunk sized for the message (its strings are copied in, and each field
    // adds an object or two) rather than msgpack's default 8 KiB: a request of a kilobyte or
    // two then takes one modest allocation. A zone that runs out adds chunks as it needs them.
    auto zone = std::make_unique<msgpack::zone>(
        std::clamp<size_t>(2 * expected_bytes + 512, 1024, MSGPACK_ZONE_CHUNK_SIZE * 8));
    bool referenced = false;
    msgpack::object object = msgpack::unpack(*zone, data.data(), data.size(), *offset, referenced,
                                             nullptr, nullptr, limit);
    return msgpack::object_handle(object, std::move(zone));
  } catch (const msgpack::insufficient_bytes&) {
    return Status::InvalidArgument("malformed msgpack: the message ends inside a value");
  } catch (const msgpack::depth_size_overflow&) {
    return Status::InvalidArgument("msgpack value is nested too deeply");
  } catch (const msgpack::size_overflow& e) {
    return Status::InvalidArgument(std::string("msgpack value exceeds a size limit: ") + e.what());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed msgpack: ") + e.what());
  }
}

uint64_t BigEndian(std::string_view bytes) {
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

// The length of the array header `data` starts with and its number of values.
std::optional<std::pair<size_t, size_t>> ArrayHeader(std::string_view data) {
  if (data.empty()) return std::nullopt;
  const auto first = static_cast<unsigned char>(data[0]);
  if ((first & 0xf0) == 0x90) return std::pair<size_t, size_t>{1, first & 0x0f};
  if (first == 0xdc && data.size() >= 3)
    return std::pair<size_t, size_t>{3, BigEndian(data.substr(1, 2))};
  if (first == 0xdd && data.size() >= 5)
    return std::pair<size_t, size_t>{5, BigEndian(data.substr(1, 4))};
  return std::nullopt;
}

}  // namespace

Result<msgpack::object_handle> Unpack(std::string_view data, const UnpackLimits& limits) {
  if (data.empty()) return Status::InvalidArgument("empty message: expected one msgpack value");
  size_t offset = 0;
  HANDOFF_ASSIGN_OR_RETURN(msgpack::object_handle handle,
                           UnpackAt(data, &offset, limits, data.size()));
  if (offset != data.size()) {
    return Status::InvalidArgument("malformed msgpack: " + std::to_string(data.size() - offset) +
                                   " trailing bytes after the first value");
  }
  return handle;
}

std::optional<size_t> ArrayLength(std::string_view data) {
  auto header = ArrayHeader(data);
  if (!header) return std::nullopt;
  return header->second;
}

Result<std::vector<UnpackedItem>> UnpackArrayItems(std::string_view data, size_t max_items,
                                                   const UnpackLimits& limits) {
  auto header = ArrayHeader(data);
  if (!header) return Status::InvalidArgument("expected a msgpack array");
  const auto [header_bytes, n] = *header;
  if (n > max_items) {
    return Status::InvalidArgument("an array of " + std::to_string(n) + " values; at most " +
                                   std::to_string(max_items));
  }
  std::vector<UnpackedItem> items;
  items.reserve(n);
  size_t offset = header_bytes;
  // Each value's zone is sized for an average value: sized by the rest of the array, every
  // zone of a batch of a thousand small requests took 64 KiB (55 MB for a batch of 89 KB).
  const size_t average = n == 0 ? 0 : (data.size() - header_bytes) / n;
  for (size_t i = 0; i < n; ++i) {
    if (offset >= data.size()) {
      return Status::InvalidArgument("malformed msgpack: the array ends after " +
                                     std::to_string(i) + " of its " + std::to_string(n) +
                                     " values");
    }
    const size_t start = offset;
    auto handle = UnpackAt(data, &offset, limits, average);
    if (!handle.ok()) {
      return Status::InvalidArgument("value " + std::to_string(i) +
                                     " of the array: " + handle.status().message());
    }
    items.push_back({data.substr(start, offset - start), std::move(handle).value()});
  }
  if (offset != data.size()) {
    return Status::InvalidArgument("malformed msgpack: " + std::to_string(data.size() - offset) +
                                   " trailing bytes after the array");
  }
  return items;
}

Result<std::vector<UnpackedItem>> UnpackBatch(std::string_view data, size_t max_items) {
  auto items = UnpackArrayItems(data, max_items);
  if (!items.ok()) return Status::InvalidArgument("a batch: " + items.status().message());
  if (items->empty()) return Status::InvalidArgument("an empty batch");
  return items;
}

std::string JoinArray(const std::vector<std::string_view>& values) {
  size_t bytes = 5;
  for (std::string_view v : values) bytes += v.size();
  std::string out;
  out.reserve(bytes);
  AppendArrayHeader(values.size(), &out);
  for (std::string_view v : values) out.append(v);
  return out;
}

void AppendArrayHeader(size_t n, std::string* out) {
  if (n < 16) {
    out->push_back(static_cast<char>(0x90 | n));
  } else if (n <= 0xffff) {
    out->push_back(static_cast<char>(0xdc));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n & 0xff));
  } else {
    out->push_back(static_cast<char>(0xdd));
    for (int shift = 24; shift >= 0; shift -= 8)
      out->push_back(static_cast<char>((n >> shift) & 0xff));
  }
}

size_t PackedSizeBound(const msgpack::object& object) {
  constexpr size_t kHeader = 9;  // the widest header: a type byte and 8 bytes (a float64)
  switch (object.type) {
    case msgpack::type::STR:
      return kHeader + object.via.str.size;
    case msgpack::type::BIN:
      return kHeader + object.via.bin.size;
    case msgpack::type::EXT:
      return kHeader + 1 + object.via.ext.size;
    case msgpack::type::ARRAY: {
      size_t n = kHeader;
      for (const msgpack::object& o : object.via.array) n += PackedSizeBound(o);
      return n;
    }
    case msgpack::type::MAP: {
      size_t n = kHeader;
      for (const msgpack::object_kv& kv : object.via.map) {
        n += PackedSizeBound(kv.key) + PackedSizeBound(kv.val);
      }
      return n;
    }
    default:
      return kHeader;
  }
}

std::string Pack(const msgpack::object& object) {
  // msgpack's packer writes to anything with write(); this one appends to a string reserved
  // at the size's bound, so packing allocates once (msgpack::sbuffer starts at 8 KiB).
  struct Appender {
    std::string* out;
    void write(const char* p, size_t n) { out->append(p, n); }
  };
  std::string out;
  out.reserve(PackedSizeBound(object));
  Appender appender{&out};
  msgpack::pack(appender, object);
  return out;
}

std::string_view MsgTypeName(const msgpack::object& object) {
  switch (object.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "a boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "an integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "a float";
    case msgpack::type::STR:
      return "a string";
    case msgpack::type::BIN:
      return "binary";
    case msgpack::type::ARRAY:
      return "an array";
    case msgpack::type::MAP:
      return "a map";
    case msgpack::type::EXT:
      return "an extension value";
  }
  return "an unknown type";
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII eight bytes at a time: payloads are mostly ASCII, and a byte at a time cost a
    // send of 1 KiB as much as the rest of its checks together (docs/performance.md).
    constexpr uint64_t kHighBits = 0x8080808080808080ULL;
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & kHighBits) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;  // a continuation byte first, an overlong lead (c0, c1) or past f4
    }
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += n + 1;
  }
  return true;
}

namespace {

// Where a value sits inside the one being checked: a chain from the value up to the field, so
// that the path is spelled only when there is an error to report.
struct JsonPath {
  const JsonPath* parent;
  std::string_view key;  // a map entry's key, or
  uint32_t index;        // an array element's index when key is null
  bool is_root;

  std::string ToString() const {
    if (is_root) return std::string(key);
    std::string out = parent->ToString();
    if (key.data() == nullptr) return out + "[" + std::to_string(index) + "]";
    const bool plain =
        !key.empty() && key.size() <= 40 && std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
    if (plain) return out + "." + std::string(key);
    std::string shown;
    for (char c : key.substr(0, 40)) {
      shown += std::isprint(static_cast<unsigned char>(c)) && c != '"' ? c : '?';
    }
    return out + "[\"" + shown + (key.size() > 40 ? "...\"]" : "\"]");
  }
};

Status NotJson(const JsonPath& path, std::string_view why) {
  return Status::InvalidArgument(path.ToString() + ": " + std::string(why));
}

Status CheckJson(const JsonPath& path, const msgpack::object& object) {
  switch (object.type) {
    case msgpack::type::NIL:
    case msgpack::type::BOOLEAN:
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return Status::OK();
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (std::isfinite(object.via.f64)) return Status::OK();
      return NotJson(path, "NaN and infinite numbers cannot be shown as JSON");
    case msgpack::type::STR:
      if (IsValidUtf8({object.via.str.ptr, object.via.str.size})) return Status::OK();
      return NotJson(path, "a string that is not valid UTF-8 cannot be shown as JSON");
    case msgpack::type::BIN:
      return NotJson(path, "binary values cannot be shown as JSON; send a string (base64)");
    case msgpack::type::EXT:
      return NotJson(path, "msgpack extension values cannot be shown as JSON");
    case msgpack::type::ARRAY: {
      const msgpack::object_array& a = object.via.array;
      for (uint32_t i = 0; i < a.size; ++i) {
        HANDOFF_RETURN_IF_ERROR(CheckJson(JsonPath{&path, {}, i, false}, a.ptr[i]));
      }
      return Status::OK();
    }
    case msgpack::type::MAP: {
      const msgpack::object_map& m = object.via.map;
      for (uint32_t i = 0; i < m.size; ++i) {
        const msgpack::object_kv& kv = m.ptr[i];
        if (kv.key.type != msgpack::type::STR) {
          return NotJson(path, "a map key is " + std::string(MsgTypeName(kv.key)) +
                                   "; JSON object keys are strings");
        }
        const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (!IsValidUtf8(key)) {
          return NotJson(path, "a map key is not valid UTF-8; JSON object keys are text");
        }
        // A key of "" still names an entry: its data() is never null.
        HANDOFF_RETURN_IF_ERROR(
            CheckJson(JsonPath{&path, key.empty() ? "" : key, 0, false}, kv.val));
      }
      return Status::OK();
    }
  }
  return NotJson(path, "a value of an unknown msgpack type");
}

}  // namespace

Status CheckJsonValue(std::string_view field, const msgpack::object& object) {
  return CheckJson(JsonPath{nullptr, field, 0, true}, object);
}

Status WrongType(std::string_view key, std::string_view expected, const msgpack::object& got) {
  return Status::InvalidArgument("field '" + std::string(key) + "' must be " +
                                 std::string(expected) + ", not " + std::string(MsgTypeName(got)));
}

Result<MapReader> MapReader::From(const msgpack::object& object, std::string_view what) {
  if (object.type != msgpack::type::MAP) {
    return Status::InvalidArgument(std::string(what) + " must be a msgpack map, not " +
                                   std::string(MsgTypeName(object)));
  }
  return MapReader(&object.via.map);
}

const msgpack::object* MapReader::Find(std::string_view key) const {
  for (uint32_t i = 0; i < map_->size; ++i) {
    const msgpack::object_kv& kv = map_->ptr[i];
    if (kv.key.type == msgpack::type::STR && kv.key.via.str.size == key.size() &&
        std::memcmp(kv.key.via.str.ptr, key.data(), key.size()) == 0) {
      return kv.val.type == msgpack::type::NIL ? nullptr : &kv.val;
    }
  }
  return nullptr;
}

Status MapReader::String(std::string_view key, std::string* out) const {
  if (!Has(key)) return Status::InvalidArgument("missing field '" + std::string(key) + "'");
  return OptString(key, out);
}

Status MapReader::Uint(std::string_view key, uint64_t* out) const {
  if (!Has(key)) return Status::InvalidArgument("missing field '" + std::string(key) + "'");
  return OptUint(key, out);
}

Status MapReader::Object(std::string_view key, const msgpack::object** out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::InvalidArgument("missing field '" + std::string(key) + "'");
  *out = o;
  return Status::OK();
}

Status MapReader::OptString(std::string_view key, std::string* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  if (o->type != msgpack::type::STR) return WrongType(key, "a string", *o);
  out->assign(o->via.str.ptr, o->via.str.size);
  return Status::OK();
}

Status MapReader::OptUint(std::string_view key, uint64_t* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  if (o->type != msgpack::type::POSITIVE_INTEGER) {
    return WrongType(key, "a non-negative integer", *o);
  }
  *out = o->via.u64;
  return Status::OK();
}

Status MapReader::OptInt(std::string_view key, int64_t* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  if (o->type == msgpack::type::NEGATIVE_INTEGER) {
    *out = o->via.i64;
  } else if (o->type == msgpack::type::POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
    *out = static_cast<int64_t>(o->via.u64);
  } else {
    return WrongType(key, "an integer", *o);
  }
  return Status::OK();
}

Status MapReader::OptBool(std::string_view key, bool* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  if (o->type != msgpack::type::BOOLEAN) return WrongType(key, "a boolean", *o);
  *out = o->via.boolean;
  return Status::OK();
}

Status MapReader::OptDouble(std::string_view key, double* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  switch (o->type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      *out = o->via.f64;
      return Status::OK();
    case msgpack::type::POSITIVE_INTEGER:
      *out = static_cast<double>(o->via.u64);
      return Status::OK();
    case msgpack::type::NEGATIVE_INTEGER:
      *out = static_cast<double>(o->via.i64);
      return Status::OK();
    default:
      return WrongType(key, "a number", *o);
  }
}

Status MapReader::OptMap(std::string_view key, std::optional<MapReader>* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  if (o->type != msgpack::type::MAP) return WrongType(key, "a map", *o);
  *out = MapReader(&o->via.map);
  return Status::OK();
}

}  // namespace handoff
