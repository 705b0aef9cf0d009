// Small helpers over msgpack-c shared by the storage records and both wire protocols.
//
// MsgWriter builds nested maps and arrays without counting their entries in advance: it writes
// a 32-bit map or array header and patches the count when the container ends (msgpack readers
// must accept a wider header than the minimum). MapReader reads a decoded map field by field and
// turns every type mismatch into an InvalidArgument naming the field. Unpack never throws: it
// decodes with DecodeTree (msgpack_tree.h), which returns a Status.
//
// Thread safety: values; one thread at a time per object.

#ifndef HANDOFF_BASE_MSGPACK_IO_H_
#define HANDOFF_BASE_MSGPACK_IO_H_

#define MSGPACK_NO_BOOST 1
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "handoff/status.h"

namespace handoff {

class MsgWriter {
 public:
  MsgWriter() : packer_(buffer_) {}
  MsgWriter(const MsgWriter&) = delete;
  MsgWriter& operator=(const MsgWriter&) = delete;

  void BeginMap();
  void EndMap();
  void BeginArray();
  void EndArray();

  // Inside a map: the key of the next entry.
  void Key(std::string_view key);

  // Values (inside an array, or after Key).
  void String(std::string_view v);
  void Int(int64_t v);
  void Uint(uint64_t v);
  void Bool(bool v);
  void Double(double v);
  void Nil();
  // Raw bytes (msgpack bin): an intent id's 16, or an encoded value carried unparsed.
  void Bin(std::string_view bytes);
  // A value that is already msgpack-encoded (a payload, say); nil if empty.
  void Raw(std::string_view encoded);

  // Key-and-value shorthands.
  void Field(std::string_view k, std::string_view v) {
    Key(k);
    String(v);
  }
  void Field(std::string_view k, const char* v) {
    Key(k);
    String(v);
  }
  void Field(std::string_view k, const std::string& v) {
    Key(k);
    String(v);
  }
  void Field(std::string_view k, int64_t v) {
    Key(k);
    Int(v);
  }
  void Field(std::string_view k, uint64_t v) {
    Key(k);
    Uint(v);
  }
  void Field(std::string_view k, uint32_t v) {
    Key(k);
    Uint(v);
  }
  void Field(std::string_view k, int v) {
    Key(k);
    Int(v);
  }
  void Field(std::string_view k, bool v) {
    Key(k);
    Bool(v);
  }
  void Field(std::string_view k, double v) {
    Key(k);
    Double(v);
  }
  void FieldRaw(std::string_view k, std::string_view encoded) {
    Key(k);
    Raw(encoded);
  }

  // Makes room for `bytes` more without growing again (an encoder that knows it is about to
  // write a large value saves the copies of doubling into it).
  void Reserve(size_t bytes) {
    if (bytes > buffer_.data.size() - buffer_.used) buffer_.data.resize(buffer_.used + bytes);
  }

  std::string_view view() const { return {buffer_.data.data(), buffer_.used}; }
  size_t size() const { return buffer_.used; }
  std::string str() const { return std::string(view()); }
  // Moves the encoding out; the writer is empty afterwards.
  std::string Release() {
    buffer_.data.resize(buffer_.used);
    buffer_.used = 0;
    return std::move(buffer_.data);
  }

  // Maps and arrays open at once; our encoders nest a few levels (payloads go in as Raw).
  static constexpr size_t kMaxDepth = 32;

 private:
  // msgpack's packer writes to any stream with write(). This one fills a string sized ahead
  // (an encoder makes many writes of a few bytes: a plain memcpy each), and the encoding is
  // moved out without a copy.
  struct Buffer {
    std::string data = std::string(256, '\0');
    size_t used = 0;
    void write(const char* p, size_t n) {
      if (n == 0) return;  // an empty string_view may carry a null pointer (memcpy's UB)
      std::memcpy(Room(n), p, n);
      used += n;
    }
    // Where the next `n` bytes go (room made for them); the caller adds them to `used`.
    char* Room(size_t n) {
      if (n > data.size() - used) data.resize(std::max(2 * data.size(), used + n));
      return data.data() + used;
    }
  };
  struct Frame {
    size_t header_offset;
    uint32_t count;
    bool is_map;
  };
  void CountItem();  // a value begins: arrays count it here, maps count keys
  void WriteStr(std::string_view s);
  void Open(bool is_map);
  void Close();

  Buffer buffer_;
  msgpack::packer<Buffer> packer_;
  std::array<Frame, kMaxDepth> frames_;
  size_t depth_ = 0;
};

// Limits applied to every decode, so a hostile frame cannot make us allocate without bound.
struct UnpackLimits {
  size_t max_depth = 64;
  size_t max_container = 1 << 20;  // entries of one map or array
  size_t max_string = 64 << 20;    // bytes of one str/bin/ext
};

// Where a value lies in the bytes it was decoded from: [begin, end).
struct ValueSpan {
  size_t begin, end;
};
// Whether decoding notes where a top-level map's values lie, for Decoded::FieldBytes (a request
// whose values may be stored as they came); a few instructions a field, so only where wanted.
enum class KeepSpans : bool { kNo, kYes };

// A decoded msgpack value and what keeps it alive. Decoding copies the frame once and points
// the value's strings into that copy (rather than copying each string into the tree's zone),
// and every value decoded from one frame (each message of a batch) shares the copy and one
// zone: a batch of a thousand messages makes two allocations, not a zone and a copy of every
// string each. A Decoded never depends on the bytes it was decoded from; whoever holds one
// message of a batch holds the batch's frame.
class Decoded {
 public:
  Decoded() = default;
  const msgpack::object& get() const { return object_; }
  // When the value is a map decoded with KeepSpans::kYes: the bytes of the value under `key`
  // as they came (the entry MapReader::Find takes: the first with that key; a nil one too),
  // noted while decoding, so that a value already encoded as it is to be stored is stored
  // without encoding it again (StoredJson). nullopt when there is no such entry.
  std::optional<std::string_view> FieldBytes(std::string_view key) const;
  // The bytes the value and everything in it were decoded from (PackedJsonMap); empty for a
  // Decoded that holds nothing.
  std::string_view bytes() const;

 private:
  struct Arena;
  friend class DecodedArena;
  Decoded(const msgpack::object& object, std::shared_ptr<const Arena> arena, const ValueSpan* spans)
      : object_(object), arena_(std::move(arena)), spans_(spans) {}

  msgpack::object object_;
  std::shared_ptr<const Arena> arena_;
  const ValueSpan* spans_ = nullptr;  // the map's values, in its arena's zone
};

// Decodes exactly one msgpack value occupying all of `data`. The result does not depend on
// `data` afterwards.
Result<Decoded> Unpack(std::string_view data, const UnpackLimits& limits = {},
                       KeepSpans spans = KeepSpans::kNo);

// One value of a msgpack array, decoded on its own, and the bytes of `data` it was decoded
// from.
struct UnpackedItem {
  std::string_view bytes;
  Decoded handle;
};

// The number of values of the array `data` starts with, or nullopt when `data` does not start
// with an array header.
std::optional<size_t> ArrayLength(std::string_view data);

// Decodes an array occupying all of `data` value by value: an array of a thousand requests is
// a thousand small decodes rather than one tree. InvalidArgument when `data` is not an array,
// holds more than `max_items` values, or a value is malformed (naming which).
Result<std::vector<UnpackedItem>> UnpackArrayItems(std::string_view data, size_t max_items,
                                                   const UnpackLimits& limits = {},
                                                   KeepSpans spans = KeepSpans::kNo);

// A batch of messages: an array of 1 to `max_items` values, each decoded on its own
// (UnpackArrayItems), its errors said of "a batch".
Result<std::vector<UnpackedItem>> UnpackBatch(std::string_view data, size_t max_items,
                                              KeepSpans spans = KeepSpans::kNo);

// Appends a msgpack array header for `n` values to `out`.
void AppendArrayHeader(size_t n, std::string* out);
// An array of values already encoded, one each: its header and their bytes, in one allocation.
std::string JoinArray(const std::vector<std::string_view>& values);

// The unsigned integer under `key` in the top-level map of `data`, read without decoding the
// rest (no allocation, no recursion), so that it can be found in a message too deep, too large
// or too broken for Unpack: a request's rid, for the error reply. nullopt when it is not there.
std::optional<uint64_t> PeekTopLevelUint(std::string_view data, std::string_view key);

// Encodes one decoded value again (to store a sub-object, such as a payload, as bytes), into
// a string allocated once at the right size.
std::string Pack(const msgpack::object& object);
// At least the bytes Pack(object) takes.
size_t PackedSizeBound(const msgpack::object& object);

std::string_view MsgTypeName(const msgpack::object& object);

// OK when `object` can be shown as JSON exactly as it is: maps keyed by strings, strings of
// valid UTF-8, no binary or extension values, finite numbers. Payloads, checkpoints, results and
// event details are held to it where they enter, so that everything stored can be shown by
// `handoffctl`, read by the Python client and handed to a shell agent. The error names the
// place: "payload.items[3]: binary values cannot be shown as JSON; send a string (base64)".
// Recursive; Unpack has bounded the depth.
Status CheckJsonValue(std::string_view field, const msgpack::object& object);

// OK when `text` is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF).
bool IsValidUtf8(std::string_view text);

// True when `encoded` is exactly one value that CheckJsonValue accepts, encoded as Pack encodes
// it (the smallest header for every number, length and count; no whole-number floats, which a
// packer may write as integers), so that Pack(Unpack(encoded)) == encoded: read from the bytes,
// with no tree. False says nothing more: the caller takes the long way (Unpack,
// CheckJsonValue), which says what is wrong if anything is. At most 64 deep.
bool IsPackedJson(std::string_view encoded);
// The bytes of `map`, a map decoded from `decoded_from` (Decoded::bytes: its strings point into
// those bytes), when they are as IsPackedJson takes them: found from where its first key lies,
// with no note made while decoding and no second walk of what comes before it. What it returns
// is always Pack(map): the map's count and first key read there are the tree's, every header
// it reads is the smallest, and the rest are the bytes the tree was decoded from. nullopt when
// the map is not so encoded, is empty, its first key is not a string, or it does not lie in
// `decoded_from`: then check and pack it.
std::optional<std::string_view> PackedJsonMap(std::string_view decoded_from,
                                              const msgpack::object& map);
// The JSON value `value` (the field `field`) as it is stored: `encoded`, its bytes as they came
// when the caller has them, if IsPackedJson; else checked (CheckJsonValue names what is wrong)
// and packed. The same bytes either way.
Result<std::string> StoredJson(std::string_view field, const msgpack::object& value,
                               std::optional<std::string_view> encoded);

class MapReader {
 public:
  // InvalidArgument unless `object` is a map; `what` names it in messages ("request").
  static Result<MapReader> From(const msgpack::object& object, std::string_view what);

  // nullptr if absent. A nil value counts as absent.
  const msgpack::object* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Required fields: InvalidArgument if missing or of the wrong type.
  Status String(std::string_view key, std::string* out) const;
  // The string's bytes in the decoded message (valid as long as it is), not a copy.
  Status StringView(std::string_view key, std::string_view* out) const;
  Status Uint(std::string_view key, uint64_t* out) const;
  Status Object(std::string_view key, const msgpack::object** out) const;

  // Optional fields: leave *out unchanged when absent; InvalidArgument on the wrong type.
  Status OptString(std::string_view key, std::string* out) const;
  Status OptStringView(std::string_view key, std::string_view* out) const;
  Status OptUint(std::string_view key, uint64_t* out) const;
  Status OptInt(std::string_view key, int64_t* out) const;
  Status OptBool(std::string_view key, bool* out) const;
  // Any number.
  Status OptDouble(std::string_view key, double* out) const;
  Status OptMap(std::string_view key, std::optional<MapReader>* out) const;

  const msgpack::object_map& map() const { return *map_; }

 private:
  explicit MapReader(const msgpack::object_map* map) : map_(map) {}
  const msgpack::object_map* map_;
};

// "field 'x' must be a string, not an integer".
Status WrongType(std::string_view key, std::string_view expected, const msgpack::object& got);

}  // namespace handoff

#endif  // HANDOFF_BASE_MSGPACK_IO_H_
