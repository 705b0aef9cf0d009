// RouteTable: which node hosts an agent address.
//
// Routes are tried in config order; the first whose pattern matches wins. A pattern is an
// address in which '*' matches any run of characters ("agent://acme/prod/*"). An address that
// matches no route, or a route naming this node, is local.
//
// Thread safety: immutable after construction.

#ifndef HANDOFF_NODE_ROUTES_H_
#define HANDOFF_NODE_ROUTES_H_

#include <string>
#include <string_view>
#include <vector>

#include "node/options.h"

namespace handoff::node {

// True if `address` matches `pattern` ('*' matches any run of characters, even empty).
bool MatchPattern(std::string_view pattern, std::string_view address);

class RouteTable {
 public:
  RouteTable(std::string self, std::vector<RouteOptions> routes)
      : self_(std::move(self)), routes_(std::move(routes)) {}

  // The peer that hosts `address`, or empty when it is local.
  std::string NodeFor(std::string_view address) const;

 private:
  std::string self_;
  std::vector<RouteOptions> routes_;
};

}  // namespace handoff::node

#endif  // HANDOFF_NODE_ROUTES_H_
