#include "bench/preload_off.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace knext::bench {
namespace {

constexpr std::string_view kOn = "\"preloadEntriesOnStart\":true";
constexpr std::string_view kOff = "\"preloadEntriesOnStart\":false";

void remove_file(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace

Expected<PreloadOffServer> PreloadOffServer::write(const std::string& app_dir) {
  std::string server = app_dir + "/server.js";
  std::ifstream in(server, std::ios::binary);
  if (!in) return Error{server + ": cannot be read"};
  std::ostringstream text;
  text << in.rdbuf();
  std::string js = text.str();
  auto at = js.find(kOn);
  if (at == std::string::npos || js.find(kOn, at + 1) != std::string::npos) {
    return Error{server +
                 " does not switch Next's preloadEntriesOnStart on (once): nothing to "
                 "switch off"};
  }
  js.replace(at, kOn.size(), kOff);
  std::string path = app_dir + "/" + kFileName;
  std::string tmp = path + "." + std::to_string(getpid()) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << js;
    if (!out.flush()) {
      remove_file(tmp);
      return Error{tmp + ": cannot be written"};
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    remove_file(tmp);
    return Error{path + ": " + ec.message()};
  }
  return PreloadOffServer(path);
}

PreloadOffServer::PreloadOffServer(std::string path)
    : path_(std::move(path)), on_stop_([p = path_] { remove_file(p); }) {}

PreloadOffServer::PreloadOffServer(PreloadOffServer&& other) noexcept
    : path_(std::move(other.path_)), on_stop_(std::move(other.on_stop_)) {
  other.path_.clear();
}

PreloadOffServer::~PreloadOffServer() {
  if (!path_.empty()) remove_file(path_);
}

}  // namespace knext::bench
