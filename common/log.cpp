#include "common/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "common/clock.hpp"

namespace knext::log {
namespace {

LogFormat g_format = LogFormat::kText;
std::shared_ptr<spdlog::logger> g_logger;

spdlog::logger& logger() {
  if (!g_logger) init(LogFormat::kText, LogLevel::kInfo);
  return *g_logger;
}

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

void emit(spdlog::level::level_enum level, std::string_view msg, std::string_view phase_name = {},
          double phase_ms = 0) {
  auto& out = logger();
  if (!out.should_log(level)) return;
  double t = ms_since_start();
  auto level_name = spdlog::level::to_string_view(level);
  std::string line;
  if (g_format == LogFormat::kJson) {
    // Numbers with fixed decimals: Boost.JSON would write 12.25 as 1.225E1.
    line = fmt::format(R"({{"t_ms":{:.3f},"level":"{}","msg":{})", t,
                       std::string_view(level_name.data(), level_name.size()), json_string(msg));
    if (!phase_name.empty()) {
      line += fmt::format(R"(,"phase":{},"phase_ms":{:.3f})", json_string(phase_name), phase_ms);
    }
    line += "}";
  } else {
    line = fmt::format("knext-launch +{:.1f}ms {}: {}", t,
                       std::string_view(level_name.data(), level_name.size()), msg);
  }
  out.log(level, line);
}

}  // namespace

void init(LogFormat format, LogLevel level) {
  g_format = format;
  // Unsynchronised stderr sink: logging happens on the loop thread only.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
  sink->set_pattern("%v");
  g_logger = std::make_shared<spdlog::logger>("knext", std::move(sink));
  g_logger->set_level(to_spdlog(level));
  g_logger->flush_on(spdlog::level::trace);
}

void debug(std::string_view msg) {
  emit(spdlog::level::debug, msg);
}
void info(std::string_view msg) {
  emit(spdlog::level::info, msg);
}
void warn(std::string_view msg) {
  emit(spdlog::level::warn, msg);
}
void error(std::string_view msg) {
  emit(spdlog::level::err, msg);
}

void phase(std::string_view name, double ms, std::string_view detail) {
  std::string msg = fmt::format("phase {} at {:.2f}ms", name, ms);
  if (!detail.empty()) msg += fmt::format(" ({})", detail);
  emit(spdlog::level::info, msg, name, ms);
}

std::string json_string(std::string_view text) {
  return boost::json::serialize(boost::json::string_view(text.data(), text.size()));
}

}  // namespace knext::log
