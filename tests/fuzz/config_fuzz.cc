// libFuzzer target: a config file. Whatever the text, parsing gives a config or an error that
// names the place; a config that parses passes or fails the checks Node::Open makes.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "node/node.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto scope : {config::Scope::kAll, config::Scope::kNodeOnly}) {
    auto parsed = config::Parse(text, "fuzz.toml", scope);
    if (parsed.ok()) {
      (void)node::ValidateNodeOptions(parsed->node);
    } else if (parsed.status().message().empty()) {
      __builtin_trap();  // every refusal says why
    }
  }
  return 0;
}
