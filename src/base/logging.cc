#include "base/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <memory>
#include <string>

#include "base/msgpack_io.h"
#include "base/time_format.h"

namespace handoff {
namespace {

// Formats with the pattern, then writes every control character of the result but the final
// newline as \xNN: text that came from a client or a peer (a routing id, an address, an
// operation name) cannot start a line of its own and pass for the daemon's.
class EscapingFormatter final : public spdlog::formatter {
 public:
  explicit EscapingFormatter(std::unique_ptr<spdlog::formatter> inner) : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    spdlog::memory_buf_t line;
    inner_->format(msg, line);
    size_t n = line.size();
    const bool eol = n > 0 && line[n - 1] == '\n';
    if (eol) --n;
    static constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      if (c >= 0x20 && c != 0x7f) {
        dest.push_back(static_cast<char>(c));
        continue;
      }
      const char escaped[] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      dest.append(escaped, escaped + sizeof(escaped));
    }
    if (eol) dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<EscapingFormatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

// One JSON object per line: {"time": RFC 3339 UTC, "level", "msg"}. The message is escaped
// as JSON wants (quotes, backslashes, control characters); a message that is not UTF-8 has its
// high bytes written as \u00XX, so every line parses.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    Append(dest, "{\"time\":\"");
    Append(dest, FormatRfc3339(ms));
    Append(dest, "\",\"level\":\"");
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    Append(dest, "\",\"msg\":\"");
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const bool utf8 = IsValidUtf8(text);
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(ch);
      } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        dest.append(escaped, escaped + sizeof(escaped));
      } else {
        dest.push_back(ch);
      }
    }
    Append(dest, "\"}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  static void Append(spdlog::memory_buf_t& dest, std::string_view s) {
    dest.append(s.data(), s.data() + s.size());
  }
};

}  // namespace

Status InitLogging(std::string_view level, std::string_view format) {
  if (format != "text" && format != "json") {
    return Status::InvalidArgument("unknown log format '" + std::string(format) +
                                   "': use text or json");
  }
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("unknown log level '" + std::string(level) +
                                   "': use trace, debug, info, warn, error or off");
  }
  spdlog::drop("handoff");  // a second call replaces the logger rather than failing
  auto logger = spdlog::stderr_logger_mt("handoff");
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_formatter(std::make_unique<EscapingFormatter>(
        std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e %l %v")));
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::OK();
}

}  // namespace handoff
