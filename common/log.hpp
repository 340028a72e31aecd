#pragma once
#include <string_view>

// One line per event on stderr, text or JSON, each stamped with ms since the launcher's exec.
namespace knext {
enum class LogFormat { kText, kJson };
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };
}  // namespace knext

namespace knext::log {

void init(LogFormat format, LogLevel level);
void debug(std::string_view msg);
void info(std::string_view msg);
void warn(std::string_view msg);
void error(std::string_view msg);
// A start-up/shutdown phase: logged at info with its ms, also as a field in JSON.
void phase(std::string_view name, double ms, std::string_view detail = {});

// `text` as a JSON string, quotes included (escaped by Boost.JSON).
std::string json_string(std::string_view text);

}  // namespace knext::log
