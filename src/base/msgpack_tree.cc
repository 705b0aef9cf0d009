#include "base/msgpack_tree.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace handoff {
namespace {

class TreeDecoder {
 public:
  TreeDecoder(std::string_view data, size_t offset, msgpack::zone& zone, const UnpackLimits& limits)
      : begin_(data.data()),
        p_(data.data() + offset),
        end_(data.data() + data.size()),
        zone_(zone),
        limits_(limits) {}

  // Records where the top-level map's values lie (DecodeTree's top_spans).
  void RecordTopSpans() { record_top_ = true; }
  const ValueSpan* top_spans() const { return top_spans_; }

  // `depth`: the containers enclosing this value.
  Status Value(msgpack::object* o, size_t depth) {
    if (p_ == end_) return Short();
    const auto b = static_cast<uint8_t>(*p_++);
    if (b <= 0x7f) return Uint(o, b);
    if (b >= 0xe0) return Int(o, static_cast<int8_t>(b));
    if (b <= 0x8f) return Map(o, b & 0x0f, depth);
    if (b <= 0x9f) return Array(o, b & 0x0f, depth);
    if (b <= 0xbf) return Str(o, b & 0x1f);
    switch (b) {
      case 0xc0:
        o->type = msgpack::type::NIL;
        return Status::OK();
      case 0xc2:
      case 0xc3:
        o->type = msgpack::type::BOOLEAN;
        o->via.boolean = b == 0xc3;
        return Status::OK();
      case 0xc4:
        return Sized<uint8_t>(o, &TreeDecoder::Bin);
      case 0xc5:
        return Sized<uint16_t>(o, &TreeDecoder::Bin);
      case 0xc6:
        return Sized<uint32_t>(o, &TreeDecoder::Bin);
      case 0xc7:
        return Sized<uint8_t>(o, &TreeDecoder::Ext);
      case 0xc8:
        return Sized<uint16_t>(o, &TreeDecoder::Ext);
      case 0xc9:
        return Sized<uint32_t>(o, &TreeDecoder::Ext);
      case 0xca: {
        uint32_t bits = 0;
        if (!Read(&bits)) return Short();
        float f;
        std::memcpy(&f, &bits, sizeof f);
        o->type = msgpack::type::FLOAT32;
        o->via.f64 = f;
        return Status::OK();
      }
      case 0xcb: {
        uint64_t bits = 0;
        if (!Read(&bits)) return Short();
        o->type = msgpack::type::FLOAT64;
        std::memcpy(&o->via.f64, &bits, sizeof bits);
        return Status::OK();
      }
      case 0xcc:
        return ReadUint<uint8_t>(o);
      case 0xcd:
        return ReadUint<uint16_t>(o);
      case 0xce:
        return ReadUint<uint32_t>(o);
      case 0xcf:
        return ReadUint<uint64_t>(o);
      case 0xd0:
        return ReadInt<uint8_t, int8_t>(o);
      case 0xd1:
        return ReadInt<uint16_t, int16_t>(o);
      case 0xd2:
        return ReadInt<uint32_t, int32_t>(o);
      case 0xd3:
        return ReadInt<uint64_t, int64_t>(o);
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return Ext(o, size_t{1} << (b - 0xd4));
      case 0xd9:
        return Sized<uint8_t>(o, &TreeDecoder::Str);
      case 0xda:
        return Sized<uint16_t>(o, &TreeDecoder::Str);
      case 0xdb:
        return Sized<uint32_t>(o, &TreeDecoder::Str);
      case 0xdc:
        return SizedContainer<uint16_t>(o, depth, &TreeDecoder::Array);
      case 0xdd:
        return SizedContainer<uint32_t>(o, depth, &TreeDecoder::Array);
      case 0xde:
        return SizedContainer<uint16_t>(o, depth, &TreeDecoder::Map);
      case 0xdf:
        return SizedContainer<uint32_t>(o, depth, &TreeDecoder::Map);
      default:  // 0xc1, never used
        return Status::InvalidArgument("malformed msgpack: byte 0xc1 is never used");
    }
  }

  const char* position() const { return p_; }

 private:
  static Status Short() {
    return Status::InvalidArgument("malformed msgpack: the message ends inside a value");
  }
  static Status TooLarge(const char* what) {
    return Status::InvalidArgument(std::string("msgpack value exceeds a size limit: ") + what);
  }

  size_t left() const { return static_cast<size_t>(end_ - p_); }

  // A big-endian unsigned integer of sizeof(T) bytes.
  template <typename T>
  bool Read(T* v) {
    if (left() < sizeof(T)) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < sizeof(T); ++i) x = (x << 8) | static_cast<uint8_t>(p_[i]);
    p_ += sizeof(T);
    *v = static_cast<T>(x);
    return true;
  }

  static Status Uint(msgpack::object* o, uint64_t v) {
    o->type = msgpack::type::POSITIVE_INTEGER;
    o->via.u64 = v;
    return Status::OK();
  }
  // As msgpack-c: a signed encoding of a value >= 0 is a positive integer.
  static Status Int(msgpack::object* o, int64_t v) {
    if (v >= 0) return Uint(o, static_cast<uint64_t>(v));
    o->type = msgpack::type::NEGATIVE_INTEGER;
    o->via.i64 = v;
    return Status::OK();
  }
  template <typename T>
  Status ReadUint(msgpack::object* o) {
    T v;
    if (!Read(&v)) return Short();
    return Uint(o, v);
  }
  template <typename U, typename S>
  Status ReadInt(msgpack::object* o) {
    U v;
    if (!Read(&v)) return Short();
    return Int(o, static_cast<S>(v));
  }

  // A value whose length follows its type byte in sizeof(T) bytes.
  template <typename T>
  Status Sized(msgpack::object* o, Status (TreeDecoder::*read)(msgpack::object*, size_t)) {
    T n;
    if (!Read(&n)) return Short();
    return (this->*read)(o, n);
  }
  template <typename T>
  Status SizedContainer(msgpack::object* o, size_t depth,
                        Status (TreeDecoder::*read)(msgpack::object*, size_t, size_t)) {
    T n;
    if (!Read(&n)) return Short();
    return (this->*read)(o, n, depth);
  }

  // The next `n` bytes, for a string, binary or extension; false when they are not all there.
  bool Take(size_t n, const char** at) {
    if (left() < n) return false;
    *at = p_;
    p_ += n;
    return true;
  }

  Status Str(msgpack::object* o, size_t n) {
    if (n > limits_.max_string) return TooLarge("str size overflow");
    const char* at;
    if (!Take(n, &at)) return Short();
    o->type = msgpack::type::STR;
    o->via.str.size = static_cast<uint32_t>(n);
    o->via.str.ptr = at;
    return Status::OK();
  }
  Status Bin(msgpack::object* o, size_t n) {
    if (n > limits_.max_string) return TooLarge("bin size overflow");
    const char* at;
    if (!Take(n, &at)) return Short();
    o->type = msgpack::type::BIN;
    o->via.bin.size = static_cast<uint32_t>(n);
    o->via.bin.ptr = at;
    return Status::OK();
  }
  // `n` bytes of data after the extension's type byte; ptr points at the type byte, as
  // msgpack-c's object_ext expects.
  Status Ext(msgpack::object* o, size_t n) {
    if (n + 1 > limits_.max_string) return TooLarge("ext size overflow");
    const char* at;
    if (!Take(n + 1, &at)) return Short();
    o->type = msgpack::type::EXT;
    o->via.ext.size = static_cast<uint32_t>(n);
    o->via.ext.ptr = at;
    return Status::OK();
  }

  Status Enter(size_t n, size_t min_bytes_each, size_t depth, const char* overflow) {
    if (n > limits_.max_container) return TooLarge(overflow);
    if (depth + 1 > limits_.max_depth) {
      return Status::InvalidArgument("msgpack value is nested too deeply");
    }
    // Every entry takes at least a byte a value: a header claiming more than the bytes left
    // hold is cut short, found before room for its entries is allocated.
    if (n > left() / min_bytes_each) return Short();
    return Status::OK();
  }

  Status Array(msgpack::object* o, size_t n, size_t depth) {
    HANDOFF_RETURN_IF_ERROR(Enter(n, 1, depth, "array size overflow"));
    o->type = msgpack::type::ARRAY;
    o->via.array.size = static_cast<uint32_t>(n);
    o->via.array.ptr = nullptr;
    if (n == 0) return Status::OK();
    auto* items = static_cast<msgpack::object*>(
        zone_.allocate_align(n * sizeof(msgpack::object), alignof(msgpack::object)));
    o->via.array.ptr = items;
    for (size_t i = 0; i < n; ++i) HANDOFF_RETURN_IF_ERROR(Value(&items[i], depth + 1));
    return Status::OK();
  }

  Status Map(msgpack::object* o, size_t n, size_t depth) {
    HANDOFF_RETURN_IF_ERROR(Enter(n, 2, depth, "map size overflow"));
    o->type = msgpack::type::MAP;
    o->via.map.size = static_cast<uint32_t>(n);
    o->via.map.ptr = nullptr;
    if (n == 0) return Status::OK();
    auto* entries = static_cast<msgpack::object_kv*>(
        zone_.allocate_align(n * sizeof(msgpack::object_kv), alignof(msgpack::object_kv)));
    o->via.map.ptr = entries;
    ValueSpan* spans = nullptr;
    if (depth == 0 && record_top_) {
      spans =
          static_cast<ValueSpan*>(zone_.allocate_align(n * sizeof(ValueSpan), alignof(ValueSpan)));
      top_spans_ = spans;
    }
    for (size_t i = 0; i < n; ++i) {
      HANDOFF_RETURN_IF_ERROR(Value(&entries[i].key, depth + 1));
      const size_t begin = static_cast<size_t>(p_ - begin_);
      HANDOFF_RETURN_IF_ERROR(Value(&entries[i].val, depth + 1));
      if (spans != nullptr) spans[i] = {begin, static_cast<size_t>(p_ - begin_)};
    }
    return Status::OK();
  }

  const char* const begin_;
  bool record_top_ = false;
  const ValueSpan* top_spans_ = nullptr;
  const char* p_;
  const char* const end_;
  msgpack::zone& zone_;
  const UnpackLimits& limits_;
};

}  // namespace

Status DecodeTree(std::string_view data, size_t* offset, msgpack::zone& zone,
                  const UnpackLimits& limits, msgpack::object* out, const ValueSpan** top_spans) {
  if (*offset > data.size()) return Status::InvalidArgument("offset past the end of the data");
  TreeDecoder decoder(data, *offset, zone, limits);
  if (top_spans != nullptr) {
    *top_spans = nullptr;
    decoder.RecordTopSpans();
  }
  HANDOFF_RETURN_IF_ERROR(decoder.Value(out, 0));
  if (top_spans != nullptr) *top_spans = decoder.top_spans();
  *offset = static_cast<size_t>(decoder.position() - data.data());
  return Status::OK();
}

}  // namespace handoff
