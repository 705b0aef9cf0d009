// Parsing and printing of the units people type: durations ("250ms", "2s", "5m", "1h") and
// byte sizes ("64KiB", "1MiB", "1GiB", or plain bytes).
//
// Thread safety: pure functions.

#ifndef HANDOFF_BASE_UNITS_H_
#define HANDOFF_BASE_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "handoff/status.h"

namespace handoff {

// "250ms" -> 250, "2s" -> 2000, "5m", "1h", "1d"; "1.5s" -> 1500; a bare number is seconds.
// Negative, empty or unit-less garbage is InvalidArgument with a message naming the input.
Result<int64_t> ParseDurationMs(std::string_view text);
// The shortest exact spelling: 1500 -> "1500ms", 2000 -> "2s", 300000 -> "5m".
std::string FormatDurationMs(int64_t ms);

// "4096" -> 4096, "64KiB"/"64KB"/"64k" -> 65536, "1MiB", "1GiB"; binary multiples throughout.
Result<uint64_t> ParseByteSize(std::string_view text);
std::string FormatByteSize(uint64_t bytes);

}  // namespace handoff

#endif  // HANDOFF_BASE_UNITS_H_
