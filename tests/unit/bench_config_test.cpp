// knext-bench's command line: the flags `knext-launch --bench ...` hands over unchanged.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "bench/bench_config.hpp"
#include "bench/preload_off.hpp"
#include "bench/variants.hpp"
#include "scratch_dir.hpp"

using knext::bench::BenchConfig;
using knext::bench::parse_bench_config;

namespace {

knext::Expected<BenchConfig> parse(std::vector<std::string> args,
                                   std::map<std::string, std::string> env = {}) {
  return parse_bench_config(args, [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

bool one_line(const std::string& message) {
  return !message.empty() && message.find('\n') == std::string::npos;
}

}  // namespace

TEST_CASE("bench defaults: 5 runs, warm page cache, node server.js, warm path /") {
  auto c = parse({"--bench"});
  REQUIRE(c.ok());
  CHECK(c->runs == 5);
  CHECK(c->warm_page_cache);
  CHECK_FALSE(c->cold_page_cache);
  CHECK(c->slow_storage.count() == 0);
  CHECK(c->load_requests == 0);
  CHECK(c->concurrency == 100);
  CHECK(c->json.empty());
  CHECK(c->gate.empty());
  CHECK(knext::bench::server_command(*c) == std::vector<std::string>{"node", "server.js"});
  CHECK(knext::bench::bench_warm_paths(*c) == std::vector<std::string>{"/"});
}

TEST_CASE("every documented bench flag is read, as scripts/bench.sh passes them") {
  auto c = parse({"--bench", "--runs", "3", "--page-cache=both", "--slow-storage=2ms",
                  "--warm-path", "/", "--warm-path", "/dynamic", "--json", "/tmp/b.json", "--",
                  "node", "server.js", "--runs=9"});
  REQUIRE(c.ok());
  CHECK(c->runs == 3);
  CHECK(c->warm_page_cache);
  CHECK(c->cold_page_cache);
  CHECK(c->slow_storage == std::chrono::milliseconds(2));
  CHECK(c->json == "/tmp/b.json");
  CHECK(c->warm_paths == std::vector<std::string>{"/", "/dynamic"});
  CHECK(c->command == std::vector<std::string>{"node", "server.js", "--runs=9"});

  auto cold = parse({"--bench", "--page-cache", "cold"});
  REQUIRE(cold.ok());
  CHECK_FALSE(cold->warm_page_cache);
  CHECK(cold->cold_page_cache);

  auto load = parse({"--bench", "--load", "20000", "--concurrency", "20", "--gate=proxy"});
  REQUIRE(load.ok());
  CHECK(load->load_requests == 20000);
  CHECK(load->concurrency == 20);
  CHECK(load->gate == "proxy");
  CHECK(parse({"--gate=auto"})->gate.empty());  // the launcher's own default
}

TEST_CASE("bench flags also come from KNEXT_<NAME>; a flag wins over its variable") {
  auto c = parse({"--runs=2"}, {{"KNEXT_RUNS", "7"},
                                {"KNEXT_PAGE_CACHE", "cold"},
                                {"KNEXT_WARM_PATHS", "/a,/b"},
                                {"KNEXT_CONCURRENCY", "5"}});
  REQUIRE(c.ok());
  CHECK(c->runs == 2);
  CHECK(c->cold_page_cache);
  CHECK(c->warm_paths == std::vector<std::string>{"/a", "/b"});
  CHECK(c->concurrency == 5);
}

TEST_CASE("bad bench input: one line naming the flag and what is allowed") {
  auto bad_runs = parse({"--runs=0"});
  REQUIRE_FALSE(bad_runs.ok());
  CHECK(one_line(bad_runs.error().message));
  CHECK(bad_runs.error().message.find("--runs") != std::string::npos);
  CHECK(bad_runs.error().message.find("1 to 1000") != std::string::npos);

  auto bad_cache = parse({"--page-cache=lukewarm"});
  REQUIRE_FALSE(bad_cache.ok());
  CHECK(bad_cache.error().message.find("'lukewarm'") != std::string::npos);
  CHECK(bad_cache.error().message.find("warm, cold or both") != std::string::npos);

  auto bad_delay = parse({"--slow-storage", "slowly"});
  REQUIRE_FALSE(bad_delay.ok());
  CHECK(bad_delay.error().message.find("--slow-storage") != std::string::npos);

  auto bad_env = parse({}, {{"KNEXT_LOAD", "lots"}});
  REQUIRE_FALSE(bad_env.ok());
  CHECK(bad_env.error().message.find("KNEXT_LOAD (for --load)") != std::string::npos);

  auto bad_gate = parse({"--gate=sometimes"});
  REQUIRE_FALSE(bad_gate.ok());
  CHECK(bad_gate.error().message.find("auto, handoff, proxy or none") != std::string::npos);

  auto bad_path = parse({"--warm-path", "dynamic"});
  REQUIRE_FALSE(bad_path.ok());
  CHECK(bad_path.error().message.find("starting with /") != std::string::npos);

  auto missing = parse({"--json"});
  REQUIRE_FALSE(missing.ok());
  CHECK(one_line(missing.error().message));
  CHECK(missing.error().message.find("--json needs a value: a file path") != std::string::npos);

  // A launcher-only flag is not the bench's: named, with where to look.
  auto unknown = parse({"--bench", "--grace=5s"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(one_line(unknown.error().message));
  CHECK(unknown.error().message.find("'--grace'") != std::string::npos);
  CHECK(unknown.error().message.find("--help") != std::string::npos);

  auto empty = parse({"--", ""});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message.find("empty string") != std::string::npos);
}

TEST_CASE("knext-bench --help lists every bench flag with its variable") {
  CHECK(parse({"--help"})->help);
  CHECK(parse({"--version"})->version);
  auto help = knext::bench::bench_help_text();
  for (const char* flag : {"--runs", "--page-cache", "--slow-storage", "--json", "--load",
                           "--concurrency", "--warm-path", "KNEXT_RUNS", "KNEXT_WARM_PATHS"}) {
    CHECK_MESSAGE(help.find(flag) != std::string::npos, flag);
  }
}

TEST_CASE("--variant picks the variants by key; plain node always runs first") {
  auto c = parse({"--variant=shipped", "--variant", "nopreload", "--variant=shipped"});
  REQUIRE(c.ok());
  CHECK(c->variants == std::vector<std::string>{"shipped", "nopreload"});
  auto env = parse({}, {{"KNEXT_VARIANTS", "ungated,next-preload"}});
  REQUIRE(env.ok());
  CHECK(env->variants == std::vector<std::string>{"ungated", "next-preload"});
  auto bad = parse({"--variant=knext"});
  REQUIRE_FALSE(bad.ok());
  CHECK(one_line(bad.error().message));
  CHECK(bad.error().message.find("--variant: 'knext' is not allowed") != std::string::npos);

  knext::bench::VariantInputs in{
      {"node", "server.js"}, "/bin/knext-launch", "/cache", {"/"}, {}, {}};
  in.keys = {"shipped", "nopreload", "ungated"};
  auto picked = knext::bench::make_variants(in);
  // nopreload needs its copy of server.js: without one it is left out.
  REQUIRE(picked.size() == 3);
  CHECK(picked[0].key == "plain");
  CHECK(picked[1].key == "shipped");
  CHECK(picked[2].key == "ungated");
  CHECK(std::find(picked[2].argv.begin(), picked[2].argv.end(), "--gate=none") !=
        picked[2].argv.end());
  in.preload_off_command = {"node", "server.knext-bench-preload-off.js"};
  auto with_copy = knext::bench::make_variants(in);
  REQUIRE(with_copy.size() == 4);
  CHECK(with_copy[1].key == "nopreload");
  CHECK(with_copy[1].argv == in.preload_off_command);
  in.keys.clear();  // the default set: every key but the opt-in ones
  for (const auto& v : knext::bench::make_variants(in)) {
    CHECK(v.key != "ungated");
    CHECK(v.key != "next-preload");
  }
}

TEST_CASE("the preload-off server: server.js with Next's preload switched off, removed after") {
  knext::test::ScratchDir dir;
  std::string copy = dir / knext::bench::PreloadOffServer::kFileName;
  {
    std::ofstream(dir / "server.js")
        << R"(const nextConfig = {"experimental":{"preloadEntriesOnStart":true,"x":1}})";
    auto written = knext::bench::PreloadOffServer::write(dir.path());
    REQUIRE(written.ok());
    std::ifstream in(copy);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text == R"(const nextConfig = {"experimental":{"preloadEntriesOnStart":false,"x":1}})");
  }
  CHECK_FALSE(std::filesystem::exists(copy));
  for (std::string server : {R"({"preloadEntriesOnStart":false})", R"({"experimental":{}})"}) {
    CAPTURE(server);
    std::ofstream(dir / "server.js") << server;
    auto refused = knext::bench::PreloadOffServer::write(dir.path());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("nothing to switch off") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(copy));
  }
}
