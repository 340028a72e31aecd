#include "cachewarm/compile_cache/app_name.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>

#include "cachewarm/text_file.hpp"
#include "common/fd.hpp"

namespace knext {
namespace {

constexpr size_t kMaxPackageJson = 64 * 1024;

std::string package_name(const std::string& app_dir) {
  Fd dir(open(app_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return {};
  Fd file(openat(dir.get(), "package.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!file.valid() || fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  auto text = read_open_file(file.get(), "package.json", kMaxPackageJson);
  if (!text) return {};
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(*text, ec);
  if (ec || !doc.is_object()) return {};
  const boost::json::value* name = doc.as_object().if_contains("name");
  if (name == nullptr || !name->is_string()) return {};
  return std::string(name->as_string());
}

}  // namespace

std::string default_app_name(const std::string& app_dir) {
  if (std::string name = package_name(app_dir); !name.empty()) return name;
  std::filesystem::path dir = std::filesystem::path(app_dir).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  if (dir.filename() == "standalone" && dir.parent_path().filename() == ".next") {
    return dir.parent_path().parent_path().filename().string();
  }
  return dir.filename().string();
}

}  // namespace knext
