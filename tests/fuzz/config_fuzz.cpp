// Flags and KNEXT_* variables: the input is NUL-separated words; "KNEXT_NAME=value" words are
// the environment, the rest the command line. parse_config must answer with a Config or one
// error, never throw.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "launcher/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  while (!input.empty()) {
    auto end = input.find('\0');
    std::string word(input.substr(0, end));
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
    auto eq = word.find('=');
    if (word.starts_with("KNEXT_") && eq != std::string::npos) {
      env.emplace(word.substr(0, eq), word.substr(eq + 1));
    } else {
      args.push_back(std::move(word));
    }
  }
  auto lookup = [&env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto config = knext::parse_config(args, lookup);
  if (!config) {
    FUZZ_CHECK(!config.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(!knext::effective_command(*config).empty());
  FUZZ_CHECK(!knext::effective_warm_paths(*config).empty());
  return 0;
}
