#include "node/routes.h"

namespace handoff::node {

bool MatchPattern(std::string_view pattern, std::string_view address) {
  // Greedy glob with backtracking to the last '*': linear in practice for route patterns.
  size_t p = 0, a = 0, star = std::string_view::npos, mark = 0;
  while (a < address.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = a;
    } else if (p < pattern.size() && pattern[p] == address[a]) {
      ++p;
      ++a;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      a = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string RouteTable::NodeFor(std::string_view address) const {
  for (const RouteOptions& route : routes_) {
    if (MatchPattern(route.match, address)) return route.node == self_ ? "" : route.node;
  }
  return "";
}

}  // namespace handoff::node
