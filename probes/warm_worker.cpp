#include "probes/warm_worker.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "probes/curl_api.hpp"

namespace knext {
namespace {

constexpr auto kRetryPause = std::chrono::milliseconds(50);
constexpr long kMaxAttemptMs = 30'000;

// One render leaves V8 mostly in its interpreter; a few more, sent together so they cost about
// one render's wall time, bring the first user request close to steady state.
void repeat_concurrently(const std::string& url, int count,
                         std::chrono::steady_clock::time_point deadline) {
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&] {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left > 0) (void)http_get(url, std::min<long>(left, kMaxAttemptMs));
    });
  }
  for (auto& t : threads) t.join();
}

WarmPathStatus warm_one(const std::string& base_url, const std::string& path, int repeat,
                        std::chrono::steady_clock::time_point deadline) {
  WarmPathStatus s;
  s.path = path;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    ++s.attempts;
    auto response = http_get(base_url + path, std::min<long>(left, kMaxAttemptMs));
    if (response) {
      s.last_status = response->status;
      s.last_error.clear();
      if (s.last_status >= 200 && s.last_status < 400) {
        s.state = WarmState::kOk;
        repeat_concurrently(base_url + path, repeat - 1, deadline);
        return s;
      }
    } else {
      s.last_error = response.error().message;
    }
    std::this_thread::sleep_for(kRetryPause);
  }
  s.state = WarmState::kFailed;
  return s;
}

std::string clean(std::string text) {
  for (char& ch : text) {
    if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
  }
  return text;
}

}  // namespace

std::string format_warm_result(const WarmPathStatus& s) {
  return fmt::format("{}\t{}\t{}\t{}\t{}\n", s.state == WarmState::kOk ? "ok" : "fail",
                     s.last_status, s.attempts, clean(s.path), clean(s.last_error));
}

Expected<WarmPathStatus> parse_warm_result(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    auto tab = line.find('\t');
    fields.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) break;
    line.remove_prefix(tab + 1);
  }
  if (fields.size() != 5 || (fields[0] != "ok" && fields[0] != "fail")) {
    return Error{"bad warm-up result line"};
  }
  WarmPathStatus s;
  s.state = fields[0] == "ok" ? WarmState::kOk : WarmState::kFailed;
  auto number = [](std::string_view text, auto& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
  };
  if (!number(fields[1], s.last_status) || !number(fields[2], s.attempts)) {
    return Error{"bad warm-up result numbers"};
  }
  s.path = std::string(fields[3]);
  s.last_error = std::string(fields[4]);
  return s;
}

int run_warm_worker(const std::vector<std::string>& paths) {
  if (const char* port = std::getenv("PORT")) avoid_local_port(std::atoi(port));
  // Load libcurl now, while node is still booting.
  if (auto api = curl_api(); !api) {
    std::fprintf(stderr, "knext-launch: warm-up: %s\n", api.error().message.c_str());
    return 1;
  }
  std::string line;
  if (!std::getline(std::cin, line)) return 0;  // the launcher no longer needs us
  std::istringstream in(line);
  std::string host;
  int port = 0;
  long timeout_ms = 0;
  int repeat = 1;
  if (!(in >> host >> port >> timeout_ms >> repeat)) return 2;
  std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string base_url = fmt::format("http://{}:{}", authority, port);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);

  std::mutex out_mutex;
  std::vector<std::thread> threads;
  threads.reserve(paths.size());
  for (const auto& path : paths) {
    threads.emplace_back([&, path] {
      std::string result = format_warm_result(warm_one(base_url, path, repeat, deadline));
      std::lock_guard lock(out_mutex);
      ssize_t ignored = write(STDOUT_FILENO, result.data(), result.size());
      (void)ignored;
    });
  }
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace knext
