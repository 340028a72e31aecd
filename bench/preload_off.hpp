#pragma once
#include <string>

#include "bench/stop_on_signal.hpp"
#include "common/expected.hpp"

namespace knext::bench {

// The "node preload off" variant's server: a copy of the app's standalone server.js with
// Next's `experimental.preloadEntriesOnStart` switched off, as a user would set it by hand in
// next.config.js (the standalone server.js carries the resolved config inline). Written beside
// server.js (it resolves the app from its own directory) and removed when this goes away, also
// when the bench is stopped by a signal. An error when server.js has no such setting switched
// on (Next 14, or an app that already switched it off).
class PreloadOffServer {
 public:
  static Expected<PreloadOffServer> write(const std::string& app_dir);
  PreloadOffServer(PreloadOffServer&& other) noexcept;
  PreloadOffServer& operator=(PreloadOffServer&&) = delete;
  PreloadOffServer(const PreloadOffServer&) = delete;
  ~PreloadOffServer();

  static constexpr const char* kFileName = "server.knext-bench-preload-off.js";

 private:
  explicit PreloadOffServer(std::string path);
  std::string path_;
  OnStopSignal on_stop_;
};

}  // namespace knext::bench
