#include "handoff/intent_status.h"

#include <array>

namespace handoff {
namespace {

constexpr std::array<std::string_view, kIntentStatusCount> kNames = {
    "CREATED", "SUBMITTED", "DELIVERED", "ACKNOWLEDGED", "IN_PROGRESS",
    "WAITING", "COMPLETED", "FAILED",    "CANCELED",     "TIMED_OUT",
};

}  // namespace

std::string_view IntentStatusName(IntentStatus status) {
  auto i = static_cast<size_t>(status);
  return i < kNames.size() ? kNames[i] : std::string_view("UNKNOWN");
}

std::optional<IntentStatus> ParseIntentStatus(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    const std::string_view candidate = kNames[i];
    if (candidate.size() != name.size()) continue;
    bool same = true;
    for (size_t j = 0; j < name.size() && same; ++j) {
      // ASCII only, inline: std::toupper consults the locale for every character, and
      // statuses are parsed from every update a peer sends.
      const char c = name[j];
      same = (c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c) == candidate[j];
    }
    if (same) return static_cast<IntentStatus>(i);
  }
  return std::nullopt;
}

}  // namespace handoff
