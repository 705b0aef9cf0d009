#include "handoff/status.h"

#include <array>

namespace handoff {
namespace {

constexpr std::array<std::string_view, 12> kCodeNames = {
    "ok",       "not_found",   "already_exists", "invalid_argument",   "conflict",  "corruption",
    "io_error", "unavailable", "timed_out",      "resource_exhausted", "cancelled", "not_stored",
};

}  // namespace

std::string_view CodeName(Code code) { return kCodeNames[static_cast<size_t>(code)]; }

std::optional<Code> CodeFromName(std::string_view name) {
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (kCodeNames[i] == name) return static_cast<Code>(i);
  }
  return std::nullopt;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace handoff
