#include "base/names.h"

#include <string>

namespace handoff {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool AllNameChars(std::string_view s) {
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return !s.empty();
}

}  // namespace

std::string Quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 80)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 80) out += "...";
  return out + "'";
}

Status ValidateAgentAddress(std::string_view address) {
  static constexpr std::string_view kScheme = "agent://";
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("invalid agent address " + Quoted(address) + ": " +
                                   std::string(why) +
                                   "; expected agent://<org>/<env>/<name> using lowercase "
                                   "letters, digits, '.', '_' and '-'");
  };
  if (address.size() > kMaxAddressLength) return bad("longer than 255 bytes");
  if (address.substr(0, kScheme.size()) != kScheme) return bad("it must start with agent://");
  std::string_view rest = address.substr(kScheme.size());
  int segments = 0;
  while (true) {
    size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    if (segment.empty()) return bad("empty segment");
    if (!AllNameChars(segment))
      return bad("segment " + Quoted(segment) + " has a forbidden character");
    ++segments;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (segments != 3) return bad("it has " + std::to_string(segments) + " segments, not 3");
  return Status::OK();
}

Status ValidateIntentType(std::string_view type) {
  auto bad = [&] {
    return Status::InvalidArgument("invalid intent type " + Quoted(type) +
                                   ": expected intent.<name>.v<N>, like intent.handoff.process.v1, "
                                   "using lowercase letters, digits, '.', '_' and '-'");
  };
  static constexpr std::string_view kPrefix = "intent.";
  if (type.size() > kMaxIntentTypeLength || type.substr(0, kPrefix.size()) != kPrefix) return bad();
  size_t dot_v = type.rfind(".v");
  if (dot_v == std::string_view::npos || dot_v < kPrefix.size() + 1) return bad();
  std::string_view name = type.substr(kPrefix.size(), dot_v - kPrefix.size());
  std::string_view version = type.substr(dot_v + 2);
  if (!AllNameChars(name) || version.empty() || version.front() == '0') return bad();
  for (char c : version) {
    if (c < '0' || c > '9') return bad();
  }
  return Status::OK();
}

Status ValidateNodeName(std::string_view name) {
  if (name.size() > kMaxNodeNameLength || !AllNameChars(name)) {
    return Status::InvalidArgument("invalid node name " + Quoted(name) +
                                   ": use 1 to 63 lowercase letters, digits, '.', '_' or '-'");
  }
  return Status::OK();
}

std::string HexId(std::string_view id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id.substr(0, 32)) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace handoff
