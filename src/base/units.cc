#include "base/units.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace handoff {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits "12.5ms" into 12.5 and "ms". False if there is no leading number.
bool SplitNumber(std::string_view text, double* number, std::string* unit) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return false;
  std::string digits(text.substr(0, i));
  char* end = nullptr;
  *number = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size() || !std::isfinite(*number)) return false;
  std::string_view rest = text.substr(i);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  *unit = Lower(rest);
  return true;
}

}  // namespace

Result<int64_t> ParseDurationMs(std::string_view text) {
  double n = 0;
  std::string unit;
  if (!SplitNumber(text, &n, &unit)) {
    return Status::InvalidArgument("invalid duration '" + std::string(text) +
                                   "': expected a number and a unit, like 250ms, 2s, 5m or 1h");
  }
  double scale;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s" || unit == "sec") {
    scale = 1000;
  } else if (unit == "m" || unit == "min") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return Status::InvalidArgument("invalid duration '" + std::string(text) + "': unknown unit '" +
                                   unit + "' (use ms, s, m, h or d)");
  }
  double ms = n * scale;
  if (ms > 9.2e15)
    return Status::InvalidArgument("duration '" + std::string(text) + "' is too long");
  return static_cast<int64_t>(std::llround(ms));
}

std::string FormatDurationMs(int64_t ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  double n = 0;
  std::string unit;
  if (!SplitNumber(text, &n, &unit)) {
    return Status::InvalidArgument(
        "invalid size '" + std::string(text) +
        "': expected a number of bytes, or a number with KiB, MiB or GiB");
  }
  double scale;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    scale = 1024.0;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    scale = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return Status::InvalidArgument("invalid size '" + std::string(text) + "': unknown unit '" +
                                   unit + "' (use KiB, MiB, GiB or TiB)");
  }
  const double bytes = n * scale;
  if (bytes >= 9.2e18) {  // beyond what llround can return
    return Status::InvalidArgument("size '" + std::string(text) + "' is too large");
  }
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string FormatByteSize(uint64_t bytes) {
  constexpr uint64_t kKi = 1024;
  if (bytes != 0 && bytes % (kKi * kKi * kKi) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (kKi * kKi) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % kKi == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + "B";
}

}  // namespace handoff
