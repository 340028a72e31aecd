#pragma once
// A scratch directory for unit tests, removed with everything in it at scope exit.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace knext::test {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix = "knext-unit") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = std::filesystem::canonical(tmpl).string();
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

}  // namespace knext::test
