// `knext-launch --bench` as a user runs it: bad input is refused with one line and exit 2.
#include <doctest/doctest.h>

#include <filesystem>

#include "tests/integration/harness.hpp"

namespace fs = std::filesystem;
using namespace knext::test;

namespace {

const fs::path kRoot = KNEXT_SOURCE_ROOT;
const fs::path kApp = kRoot / "tests/fixtures/next-app/.next/standalone";

std::string node_path() {
  return (kRoot / ".deps/node/bin").string() + ":" + std::getenv("PATH");
}

LaunchOptions in_dir(const std::string& cwd) {
  LaunchOptions o;
  o.pid_namespace = false;
  o.cwd = cwd;
  o.env = {{"PATH", node_path()}};
  return o;
}

}  // namespace

TEST_CASE("--bench in a directory without server.js: one line naming it, exit 2") {
  TempDir empty;
  auto r = run_launcher({"--bench"}, in_dir(empty.path().string()), 10s);
  CHECK(r.exit_code == 2);
  CHECK(lines(r.err).size() == 1);
  CHECK(r.err.find("no server.js") != std::string::npos);
}

TEST_CASE("--bench with a command that is not installed: one line naming it, exit 2") {
  auto r = run_launcher({"--bench", "--", "no-such-node-knext"}, in_dir(kApp.string()), 10s);
  CHECK(r.exit_code == 2);
  CHECK(lines(r.err).size() == 1);
  CHECK(r.err.find("no-such-node-knext") != std::string::npos);
}
