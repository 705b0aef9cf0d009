// The readers of msgpack_io.h: decoding within limits, batches, and MapReader. The writers are
// in msgpack_writer.cc, the JSON checks in json_check.cc.

#include "base/msgpack_io.h"

#include <algorithm>
#include <cstring>

#include "base/msgpack_tree.h"

namespace handoff {

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

// The bytes of a frame, which its decoded values' strings point into, and the zone holding
// their trees.
struct Decoded::Arena {
  Arena(std::string_view data, size_t chunk_size) : bytes(data), zone(chunk_size) {}
  const std::string bytes;
  msgpack::zone zone;
};

// Decodes the values of one frame into one Arena.
class DecodedArena {
 public:
  // The zone holds only the trees' objects (16 bytes each, 32 a map entry; strings stay in the
  // frame): half the frame's size is room for most, and a zone that runs out adds chunks.
  explicit DecodedArena(std::string_view data)
      : arena_(std::make_shared<Decoded::Arena>(
            data, std::clamp<size_t>(data.size() / 2, 1024, MSGPACK_ZONE_CHUNK_SIZE * 8))) {}

  // Decodes the value at `*offset` and moves `*offset` past it.
  Result<Decoded> UnpackAt(size_t* offset, const UnpackLimits& limits, KeepSpans keep) {
    msgpack::object object;
    const ValueSpan* spans = nullptr;
    HANDOFF_RETURN_IF_ERROR(DecodeTree(arena_->bytes, offset, arena_->zone, limits, &object,
                                       keep == KeepSpans::kYes ? &spans : nullptr));
    return Decoded(object, arena_, spans);
  }

 private:
  std::shared_ptr<Decoded::Arena> arena_;
};

std::string_view Decoded::bytes() const {
  return arena_ ? std::string_view(arena_->bytes) : std::string_view();
}

std::optional<std::string_view> Decoded::FieldBytes(std::string_view key) const {
  if (spans_ == nullptr || object_.type != msgpack::type::MAP) return std::nullopt;
  const msgpack::object_map& m = object_.via.map;
  for (uint32_t i = 0; i < m.size; ++i) {
    const msgpack::object& k = m.ptr[i].key;
    if (k.type == msgpack::type::STR && k.via.str.size == key.size() &&
        std::memcmp(k.via.str.ptr, key.data(), key.size()) == 0) {
      return std::string_view(arena_->bytes)
          .substr(spans_[i].begin, spans_[i].end - spans_[i].begin);
    }
  }
  return std::nullopt;
}

namespace {

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

Result<Decoded> Unpack(std::string_view data, const UnpackLimits& limits, KeepSpans spans) {
  if (data.empty()) return Status::InvalidArgument("empty message: expected one msgpack value");
  size_t offset = 0;
  HANDOFF_ASSIGN_OR_RETURN(Decoded handle, DecodedArena(data).UnpackAt(&offset, limits, spans));
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
                                                   const UnpackLimits& limits, KeepSpans spans) {
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
  DecodedArena arena(data);
  for (size_t i = 0; i < n; ++i) {
    if (offset >= data.size()) {
      return Status::InvalidArgument("malformed msgpack: the array ends after " +
                                     std::to_string(i) + " of its " + std::to_string(n) +
                                     " values");
    }
    const size_t start = offset;
    auto handle = arena.UnpackAt(&offset, limits, spans);
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

Result<std::vector<UnpackedItem>> UnpackBatch(std::string_view data, size_t max_items,
                                              KeepSpans spans) {
  auto items = UnpackArrayItems(data, max_items, {}, spans);
  if (!items.ok()) return Status::InvalidArgument("a batch: " + items.status().message());
  if (items->empty()) return Status::InvalidArgument("an empty batch");
  return items;
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
  std::string_view view;
  HANDOFF_RETURN_IF_ERROR(StringView(key, &view));
  out->assign(view);
  return Status::OK();
}

Status MapReader::StringView(std::string_view key, std::string_view* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::InvalidArgument("missing field '" + std::string(key) + "'");
  if (o->type != msgpack::type::STR) return WrongType(key, "a string", *o);
  *out = std::string_view(o->via.str.ptr, o->via.str.size);
  return Status::OK();
}

Status MapReader::Uint(std::string_view key, uint64_t* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::InvalidArgument("missing field '" + std::string(key) + "'");
  if (o->type != msgpack::type::POSITIVE_INTEGER) {
    return WrongType(key, "a non-negative integer", *o);
  }
  *out = o->via.u64;
  return Status::OK();
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

Status MapReader::OptStringView(std::string_view key, std::string_view* out) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return Status::OK();
  if (o->type != msgpack::type::STR) return WrongType(key, "a string", *o);
  *out = std::string_view(o->via.str.ptr, o->via.str.size);
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
