// MsgWriter and the other encoders of msgpack_io.h: building messages, packing decoded objects
// again, and joining encoded messages into an array.

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/msgpack_io.h"

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

void MsgWriter::Bin(std::string_view bytes) {
  CountItem();
  packer_.pack_bin(static_cast<uint32_t>(bytes.size()));
  packer_.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

void MsgWriter::Raw(std::string_view encoded) {
  if (encoded.empty()) {
    Nil();
    return;
  }
  CountItem();
  buffer_.write(encoded.data(), encoded.size());
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

namespace {

// msgpack's packer writes to anything with write(); this one appends to a string.
struct Appender {
  std::string* out;
  void write(const char* p, size_t n) { out->append(p, n); }
};

// The object's encoding through the packer's own encoders, so the bytes are msgpack::pack's.
// msgpack::pack(object) walks the tree with a general visitor (object_parser) that cost more
// than the writing; this is a plain recursion. Trees come from our decoders, whose depth
// limits bound it.
void PackObject(msgpack::packer<Appender>& pk, const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      pk.pack_nil();
      return;
    case msgpack::type::BOOLEAN:
      if (o.via.boolean) {
        pk.pack_true();
      } else {
        pk.pack_false();
      }
      return;
    case msgpack::type::POSITIVE_INTEGER:
      pk.pack_uint64(o.via.u64);
      return;
    case msgpack::type::NEGATIVE_INTEGER:
      pk.pack_int64(o.via.i64);
      return;
    case msgpack::type::FLOAT32:
      pk.pack_float(static_cast<float>(o.via.f64));
      return;
    case msgpack::type::FLOAT64:
      pk.pack_double(o.via.f64);
      return;
    case msgpack::type::STR:
      pk.pack_str(o.via.str.size);
      pk.pack_str_body(o.via.str.ptr, o.via.str.size);
      return;
    case msgpack::type::BIN:
      pk.pack_bin(o.via.bin.size);
      pk.pack_bin_body(o.via.bin.ptr, o.via.bin.size);
      return;
    case msgpack::type::EXT:
      pk.pack_ext(o.via.ext.size, o.via.ext.type());
      pk.pack_ext_body(o.via.ext.data(), o.via.ext.size);
      return;
    case msgpack::type::ARRAY:
      pk.pack_array(o.via.array.size);
      for (const msgpack::object& item : o.via.array) PackObject(pk, item);
      return;
    case msgpack::type::MAP:
      pk.pack_map(o.via.map.size);
      for (const msgpack::object_kv& kv : o.via.map) {
        PackObject(pk, kv.key);
        PackObject(pk, kv.val);
      }
      return;
  }
  // Not a type msgpack-c decodes; msgpack::pack would throw.
  std::fprintf(stderr, "Pack: msgpack object of unknown type %d\n", static_cast<int>(o.type));
  std::abort();
}

}  // namespace

std::string Pack(const msgpack::object& object) {
  std::string out;
  out.reserve(PackedSizeBound(object));  // packing allocates once
  Appender appender{&out};
  msgpack::packer<Appender> pk(appender);
  PackObject(pk, object);
  return out;
}

}  // namespace handoff
