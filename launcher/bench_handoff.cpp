#include "launcher/bench_handoff.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/self_exe.hpp"
#include "common/value_parsers.hpp"

namespace knext {

bool bench_requested(const std::vector<std::string>& args, const EnvLookup& env) {
  constexpr std::string_view kFlag = "--bench";
  for (const auto& arg : args) {
    if (arg == "--") break;
    if (arg == kFlag) return true;
    if (arg.size() > kFlag.size() && arg.compare(0, kFlag.size(), kFlag) == 0 &&
        arg[kFlag.size()] == '=') {
      // A bad value is left to the launcher's own parser, which names it.
      return parse_bool(std::string_view(arg).substr(kFlag.size() + 1)).value_or(false);
    }
  }
  auto from_env = env("KNEXT_BENCH");
  return from_env && parse_bool(*from_env).value_or(false);
}

int exec_bench(const std::vector<std::string>& args) {
  auto bin = beside_self("knext-bench");
  if (!bin) {
    std::fprintf(stderr, "knext-launch: --bench: cannot find knext-bench: %s\n",
                 bin.error().message.c_str());
    return 2;
  }
  std::string program = bin->string();
  std::vector<std::string> words = args;
  std::vector<char*> argv{program.data()};
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  execv(program.c_str(), argv.data());
  std::fprintf(stderr,
               "knext-launch: --bench runs knext-bench, which is not installed beside this binary "
               "(%s: %s)\n",
               program.c_str(), std::strerror(errno));
  return 2;
}

}  // namespace knext
