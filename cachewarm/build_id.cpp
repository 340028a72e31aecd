#include "cachewarm/build_id.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>

#include "common/fd.hpp"

namespace knext {
namespace {

constexpr size_t kMaxBuildIdLength = 64;

std::optional<std::string> read_small_file(const std::string& path, size_t limit) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string out(limit, '\0');
  size_t got = 0;
  while (got < limit) {
    ssize_t n = read(fd.get(), out.data() + got, limit - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

std::optional<uint64_t> hash_file(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  uint64_t hash = fnv1a64({});
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return hash;
    hash = fnv1a64(std::string_view(buf, static_cast<size_t>(n)), hash);
  }
}

}  // namespace

bool valid_build_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxBuildIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

uint64_t fnv1a64(std::string_view bytes, uint64_t hash) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string read_build_id(const std::string& app_dir) {
  constexpr size_t kReadLimit = 4096;  // a valid id plus any whitespace fits many times over
  auto text = read_small_file(app_dir + "/.next/BUILD_ID", kReadLimit);
  if (text && text->size() < kReadLimit) {
    std::string_view id = trim(*text);
    if (valid_build_id(id)) return std::string(id);
  }
  if (auto hash = hash_file(app_dir + "/server.js")) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(*hash));
    return hex;
  }
  return "unknown";
}

}  // namespace knext
