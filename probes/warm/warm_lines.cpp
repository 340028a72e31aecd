// The warm-up worker's result lines (see warm_worker.hpp).
#include <fmt/format.h>

#include <charconv>
#include <string>

#include "probes/warm/warm_worker.hpp"

namespace knext {
namespace {

std::string clean(std::string text) {
  for (char& ch : text) {
    if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
  }
  return text;
}

constexpr std::string_view kStates[] = {"pending", "warming", "ok", "failed"};

}  // namespace

std::string format_warm_result(const WarmPathStatus& s) {
  return fmt::format("path\t{}\t{}\t{}\t{}\t{:.3f}\t{:.3f}\t{}\t{}\t{}\t{}\n",
                     s.background ? "b" : "c", kStates[static_cast<int>(s.state)], s.last_status,
                     s.attempts, s.first_ms, s.last_ms, s.holds_gate ? 1 : 0, clean(s.result),
                     clean(s.path), clean(s.last_error));
}

Expected<WarmPathStatus> parse_warm_result(std::string_view line) {
  std::vector<std::string_view> f;
  while (true) {
    auto tab = line.find('\t');
    f.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) break;
    line.remove_prefix(tab + 1);
  }
  if (f.size() != 11 || f[0] != "path" || (f[1] != "b" && f[1] != "c")) {
    return Error{"bad warm-up result line"};
  }
  WarmPathStatus s;
  s.background = f[1] == "b";
  bool known = false;
  for (size_t i = 0; i < std::size(kStates); ++i) {
    if (f[2] == kStates[i]) {
      s.state = static_cast<WarmState>(i);
      known = true;
    }
  }
  auto number = [](std::string_view text, auto& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
  };
  int holds = 0;
  if (!known || !number(f[3], s.last_status) || !number(f[4], s.attempts) ||
      !number(f[5], s.first_ms) || !number(f[6], s.last_ms) || !number(f[7], holds) ||
      f[9].empty()) {
    return Error{"bad warm-up result fields"};
  }
  s.holds_gate = holds != 0;
  s.result = std::string(f[8]);
  s.path = std::string(f[9]);
  s.last_error = std::string(f[10]);
  return s;
}

}  // namespace knext
