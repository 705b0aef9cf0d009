#include "base/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <string>

namespace handoff {

Status InitLogging(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("unknown log level '" + std::string(level) +
                                   "': use trace, debug, info, warn, error or off");
  }
  auto logger = spdlog::stderr_logger_mt("handoff");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::OK();
}

}  // namespace handoff
