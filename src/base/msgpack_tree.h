// DecodeTree: msgpack bytes to msgpack-c's object tree, without msgpack-c's parser.
//
// msgpack-c builds a tree by driving a visitor from a general state machine (one that can stop
// and resume on partial input), and that machinery, not the tree, cost most of a decode: two
// thousand instructions for a reply of twenty fields. Our frames always arrive whole, so this
// is a plain recursive descent over them: the same tree (strings, binaries and extensions
// pointing into the bytes, containers in the zone), the same limits, in about a third of the
// instructions. It also refuses a container whose header claims more entries than the bytes
// left could hold before it allocates room for them (msgpack-c allocates first).
//
// Thread safety: a function; the zone is the caller's.

#ifndef HANDOFF_BASE_MSGPACK_TREE_H_
#define HANDOFF_BASE_MSGPACK_TREE_H_

#include <cstddef>
#include <string_view>

#include "base/msgpack_io.h"

namespace handoff {

// Decodes the value at `*offset` of `data` into `*out` and moves `*offset` past it. The tree's
// containers are allocated in `zone`; its strings point into `data`, which must outlive it.
// InvalidArgument when the value is cut short, malformed, nested deeper than
// `limits.max_depth` containers or over a size limit.
// With `top_spans`, when the value is a map: where each of its values lies in `data` (the
// bytes of entry i's value are data.substr(spans[i].begin, spans[i].end - spans[i].begin)), an
// array in `zone` set in *top_spans; else *top_spans is null.
Status DecodeTree(std::string_view data, size_t* offset, msgpack::zone& zone,
                  const UnpackLimits& limits, msgpack::object* out,
                  const ValueSpan** top_spans = nullptr);

}  // namespace handoff

#endif  // HANDOFF_BASE_MSGPACK_TREE_H_
