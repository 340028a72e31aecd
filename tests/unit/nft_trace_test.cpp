// Next.js build traces as the fallback prewarm list: the JSON subset, route matching, layouts.
#include <doctest/doctest.h>

#include <unistd.h>
#include "tests/unit/scratch_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "cachewarm/page_cache/nft_trace.hpp"
#include "cachewarm/page_cache/nft_trace_json.hpp"

namespace fs = std::filesystem;
using knext::PageRoute;

namespace {

using TempDir = knext::test::ScratchDir;

void write_file(const std::string& path, const std::string& text = "x") {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string json_files(const std::vector<std::string>& files) {
  std::string out = R"({"version":1,"files":[)";
  for (size_t i = 0; i < files.size(); ++i) {
    if (i) out += ",";
    out += "\"" + files[i] + "\"";
  }
  return out + R"(],"fileHashes":{},"symlinks":[]})";
}

// Below `base`: a project whose build wrote <project>/.next/standalone (tracing root = project
// unless `rel_app` names the app's place below it, as in a monorepo).
struct Layout {
  std::string project;     // where `next build` ran
  std::string standalone;  // <project>/.next/standalone
  std::string app;         // <standalone>/<rel_app>: server.js lives here

  Layout(const std::string& base, const std::string& rel_app) {
    std::string root = base + "/repo";
    project = rel_app.empty() ? root : root + "/" + rel_app;
    standalone = project + "/.next/standalone";
    app = rel_app.empty() ? standalone : standalone + "/" + rel_app;
    write_file(app + "/server.js", "require('next')");
    write_file(app + "/package.json", "{}");
    write_file(app + "/.next/BUILD_ID", "b1");
    write_file(app + "/.next/routes-manifest.json", "{}");
    write_file(app + "/.next/server/pages-manifest.json", R"({"/404":"pages/404.html"})");
    write_file(app + "/.next/required-server-files.json",
               R"({"version":1,"config":{"distDir":"./.next","files":["nope"]},"appDir":"/build",)"
               R"("relativeAppDir":")" +
                   rel_app +
                   R"(","files":[".next/routes-manifest.json",".next/BUILD_ID",)"
                   R"(".next/server/missing.json"]})");
    write_file(app + "/.next/app-path-routes-manifest.json",
               R"({"/page":"/","/slow/page":"/slow","/blog/[slug]/page":"/blog/[slug]"})");
    write_file(app + "/.next/server/app-paths-manifest.json",
               R"({"/page":"app/page.js","/slow/page":"app/slow/page.js",)"
               R"("/blog/[slug]/page":"app/blog/[slug]/page.js"})");
    // node_modules sit at the standalone root, .next chunks beside the app.
    std::string nm = standalone + "/node_modules";
    for (const char* f : {"next/dist/server/next-server.js", "next/dist/server/lib/start-server.js",
                          "next/package.json", "react/index.js", "react/README.md",
                          "sharp/lib/libvips.so.8", "shared/util.js"}) {
      write_file(nm + "/" + f);
    }
    for (const char* page : {"page.js", "slow/page.js", "blog/[slug]/page.js"}) {
      write_file(app + "/.next/server/app/" + page);
    }
    write_file(app + "/.next/server/chunks/root.js");
    write_file(app + "/.next/server/chunks/slow.js");
    write_file(app + "/.next/server/chunks/blog.js");
    // Paths up to the standalone root from .next/server/app/<route>/.
    std::string up_app = rel_app.empty() ? "../../../" : "../../../../../";
    write_file(app + "/.next/server/app/page.js.nft.json",
               json_files({"../chunks/root.js", up_app + "node_modules/react/index.js",
                           up_app + "node_modules/shared/util.js"}));
    write_file(app + "/.next/server/app/slow/page.js.nft.json",
               json_files({"../../chunks/slow.js", "../" + up_app + "node_modules/shared/util.js",
                           "../../chunks/gone.js"}));
    write_file(app + "/.next/server/app/blog/[slug]/page.js.nft.json",
               json_files({"../../../chunks/blog.js"}));
    // The server's trace stays in the build tree, relative to <project>/.next.
    std::string up_root = rel_app.empty() ? "../" : "../../../";
    write_file(
        project + "/.next/next-server.js.nft.json",
        json_files(
            {up_root + "node_modules/next/dist/server/lib/start-server.js",
             up_root + "node_modules/next/dist/server/next-server.js",
             up_root + "node_modules/next/package.json", up_root + "node_modules/react/README.md",
             up_root + "node_modules/sharp/lib/libvips.so.8",
             up_root + "node_modules/not-copied/index.js", "../../../../../../../../etc/passwd"}));
  }
};

}  // namespace

TEST_CASE("nft json: string array and string members, string maps") {
  auto list = knext::json::string_array_member(
      R"( {"version": 1, "files" : ["a", "b\/c"] , "x": null} )", "files");
  REQUIRE(list.ok());
  CHECK(*list == std::vector<std::string>{"a", "b/c"});

  auto map = knext::json::string_map(R"({"/page":"app/page.js","/x":"y"})");
  REQUIRE(map.ok());
  REQUIRE(map->size() == 2);
  CHECK((*map)[0].first == "/page");
  CHECK((*map)[0].second == "app/page.js");

  auto s = knext::json::string_member(R"({"dir":"\u00e9\ud83d\ude00\n\"\\\t"})", "dir");
  REQUIRE(s.ok());
  CHECK(*s == "\xc3\xa9\xf0\x9f\x98\x80\n\"\\\t");

  auto nested = knext::json::string_array_member(
      R"({"a":{"files":["no"]},"b":[1,-2.5e3,true,false,null,{}],"files":[]})", "files");
  REQUIRE(nested.ok());
  CHECK(nested->empty());

  auto missing = knext::json::string_array_member(R"({"version":1})", "files");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ENOENT);
  CHECK(knext::json::string_member(R"({"version":1})", "dir").error().code == ENOENT);
}

TEST_CASE("nft json: garbage is an error, never an exception or a crash") {
  const std::vector<std::string> garbage = {
      "",
      "   ",
      "{",
      "[",
      "{\"files\":[\"a\"",  // truncated
      "{\"files\":[\"a\"]} trailing",
      "{\"files\":[\"a\",]}",
      "{\"files\" [\"a\"]}",
      "{files:[]}",
      "{\"files\":[\"a\u0001\"]}",
      "{\"files\":[\"\\x\"]}",
      "{\"files\":[\"\\u12\"]}",
      "{\"files\":[\"\\ud800\"]}",
      "{\"files\":[\"\\udc00\"]}",
      "{\"files\":[\"\\u0000\"]}",
      "{\"files\":[tru]}",
      "{\"files\":[-]}",
      std::string(100000, '['),
      std::string(100000, '{'),
      std::string("{\"files\":[\"a\0b\"]}", 17),
      "\x89PNG\r\n\x1a\n",
  };
  for (const auto& g : garbage) {
    CAPTURE(g.substr(0, 40));
    CHECK_FALSE(knext::json::string_array_member(g, "files").ok());
    CHECK_FALSE(knext::json::string_map(g).ok());
  }
  auto truncated = knext::json::string_array_member("{\"files\":[\"a\"", "files");
  CHECK(truncated.error().message.find("bad JSON at byte") == 0);
  // Right shape, wrong types.
  CHECK_FALSE(knext::json::string_array_member(R"({"files":["a", 1]})", "files").ok());
  CHECK_FALSE(knext::json::string_array_member(R"({"files":{"a":"b"}})", "files").ok());
  CHECK_FALSE(knext::json::string_array_member(R"(["files"])", "files").ok());
  CHECK_FALSE(knext::json::string_map(R"({"a":["b"]})").ok());
  CHECK_FALSE(knext::json::string_member(R"({"dir":1})", "dir").ok());
  CHECK_FALSE(knext::json::string_member(R"({"dir":"a" "b"})", "dir").ok());
}

TEST_CASE("nft trace: entries resolve against the trace's directory") {
  TempDir dir;
  write_file(dir / "a/b/page.js.nft.json", json_files({"../../x/y.js", "z.js", "./w/../v.js"}));
  auto files = knext::read_nft_trace(dir / "a/b/page.js.nft.json");
  REQUIRE(files.ok());
  CHECK(*files == std::vector<std::string>{dir / "x/y.js", dir / "a/b/z.js", dir / "a/b/v.js"});

  CHECK_FALSE(knext::read_nft_trace(dir / "missing.nft.json").ok());
  write_file(dir / "bad.nft.json", "{\"version\":1,\"files\":[\"a\"");
  auto bad = knext::read_nft_trace(dir / "bad.nft.json");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("bad.nft.json") != std::string::npos);
  write_file(dir / "nofiles.nft.json", "{\"version\":1}");
  CHECK_FALSE(knext::read_nft_trace(dir / "nofiles.nft.json").ok());
  write_file(dir / "numbers.nft.json", "{\"files\":[1,2]}");
  CHECK_FALSE(knext::read_nft_trace(dir / "numbers.nft.json").ok());
}

TEST_CASE("nft trace: warm paths match routes, static before dynamic") {
  std::vector<PageRoute> routes = {
      {"/", "app/page.js"},
      {"/blog/[slug]", "app/blog/[slug]/page.js"},
      {"/blog/first", "app/blog/first/page.js"},
      {"/docs/[...path]", "app/docs/[...path]/page.js"},
      {"/shop/[[...path]]", "app/shop/[[...path]]/page.js"},
      {"/api/health", "app/api/health/route.js"},
  };
  auto file_for = [&](const char* warm) {
    auto r = knext::match_route(routes, warm);
    return r ? r->file : std::string("none");
  };
  CHECK(file_for("/") == "app/page.js");
  CHECK(file_for("") == "app/page.js");
  CHECK(file_for("/?utm=1") == "app/page.js");
  CHECK(file_for("/blog/first") == "app/blog/first/page.js");
  CHECK(file_for("/blog/other/") == "app/blog/[slug]/page.js");
  CHECK(file_for("/blog/other#top") == "app/blog/[slug]/page.js");
  CHECK(file_for("/blog") == "none");
  CHECK(file_for("/blog/a/b") == "none");
  CHECK(file_for("/docs/a/b/c") == "app/docs/[...path]/page.js");
  CHECK(file_for("/docs") == "none");
  CHECK(file_for("/shop") == "app/shop/[[...path]]/page.js");
  CHECK(file_for("/shop/x/y") == "app/shop/[[...path]]/page.js");
  CHECK(file_for("/api/health") == "app/api/health/route.js");
  CHECK(file_for("/nowhere") == "none");
}

TEST_CASE("nft trace: a synthetic standalone layout") {
  TempDir dir;
  Layout l(dir.path(), "");
  auto t = knext::trace_prewarm_files(l.app, {"/slow?x=1", "/missing"});
  std::string nm = l.standalone + "/node_modules/";
  std::string srv = l.app + "/.next/server/";
  std::vector<std::string> expected = {
      l.app + "/server.js",
      l.app + "/package.json",
      nm + "next/dist/server/lib/start-server.js",
      nm + "next/dist/server/next-server.js",
      nm + "next/package.json",
      l.app + "/.next/routes-manifest.json",
      l.app + "/.next/BUILD_ID",
      srv + "app/slow/page.js",
      srv + "chunks/slow.js",
      nm + "shared/util.js",
      srv + "app/page.js",
      srv + "chunks/root.js",
      nm + "react/index.js",
      srv + "app/blog/[slug]/page.js",
      srv + "chunks/blog.js",
  };
  CHECK(t.files == expected);
  CHECK(t.traces.size() == 4);
  CHECK(t.traces[0] == l.project + "/.next/next-server.js.nft.json");
  // README, libvips, a module the build did not copy, /etc/passwd outside, gone.js, missing.json.
  CHECK(t.dropped == 6);
  REQUIRE(t.problems.size() == 1);
  CHECK(t.problems[0] == "no page for warm path /missing");
}

TEST_CASE("nft trace: only the warm paths' entries without all_entries; no code filter") {
  TempDir dir;
  Layout l(dir.path(), "");
  knext::TraceOptions options;
  options.all_entries = false;
  options.code_only = false;
  auto t = knext::trace_prewarm_files(l.app + "/", {"/blog/hello"}, options);
  std::set<std::string> files(t.files.begin(), t.files.end());
  CHECK(files.count(l.standalone + "/node_modules/react/README.md") == 1);
  CHECK(files.count(l.standalone + "/node_modules/sharp/lib/libvips.so.8") == 1);
  CHECK(files.count(l.app + "/.next/server/chunks/blog.js") == 1);
  CHECK(files.count(l.app + "/.next/server/app/page.js") == 0);
  CHECK(files.count(l.app + "/.next/server/chunks/slow.js") == 0);
  CHECK(t.files.back() == l.app + "/.next/server/chunks/blog.js");
}

TEST_CASE("nft trace: a monorepo app below the tracing root") {
  TempDir dir;
  Layout l(dir.path(), "apps/web");
  auto t = knext::trace_prewarm_files(l.app, {"/"});
  REQUIRE(t.files.size() >= 4);
  CHECK(t.files[0] == l.app + "/server.js");
  CHECK(t.files[2] == l.standalone + "/node_modules/next/dist/server/lib/start-server.js");
  std::set<std::string> files(t.files.begin(), t.files.end());
  CHECK(files.count(l.standalone + "/node_modules/react/index.js") == 1);
  CHECK(files.count(l.app + "/.next/server/chunks/root.js") == 1);
  CHECK(t.problems.empty());
}

TEST_CASE("nft trace: a server trace copied next to the app wins; without one it is a problem") {
  TempDir dir;
  Layout l(dir.path(), "");
  write_file(l.app + "/.next/next-server.js.nft.json",
             json_files({"../node_modules/react/index.js"}));
  knext::TraceOptions only_warm;
  only_warm.all_entries = false;
  auto t = knext::trace_prewarm_files(l.app, {}, only_warm);
  REQUIRE(t.files.size() >= 3);
  CHECK(t.files[2] == l.standalone + "/node_modules/react/index.js");
  CHECK(t.traces == std::vector<std::string>{l.app + "/.next/next-server.js.nft.json"});

  fs::remove(l.app + "/.next/next-server.js.nft.json");
  fs::remove(l.project + "/.next/next-server.js.nft.json");
  auto none = knext::trace_prewarm_files(l.app, {"/"});
  REQUIRE_FALSE(none.problems.empty());
  CHECK(none.problems[0].find("no next-server.js.nft.json") != std::string::npos);
  CHECK(none.files[0] == l.app + "/server.js");
}

TEST_CASE("nft trace: garbage traces and manifests are skipped and named") {
  TempDir dir;
  Layout l(dir.path(), "");
  write_file(l.project + "/.next/next-server.js.nft.json", "{\"files\": [");
  write_file(l.app + "/.next/server/app/page.js.nft.json", "\x00\x01garbage");
  write_file(l.app + "/.next/required-server-files.json", "[]");
  auto t = knext::trace_prewarm_files(l.app, {"/"});
  CHECK(t.problems.size() == 3);
  std::set<std::string> files(t.files.begin(), t.files.end());
  CHECK(files.count(l.app + "/.next/server/app/page.js") == 1);
  CHECK(files.count(l.app + "/.next/server/chunks/slow.js") == 1);

  // No manifests at all: server.js is still there, and nothing throws.
  fs::remove(l.app + "/.next/app-path-routes-manifest.json");
  auto bare = knext::trace_prewarm_files(l.app, {"/"});
  CHECK(bare.files.size() >= 1);
  CHECK(knext::trace_prewarm_files(dir / "nothing-here", {"/"}).files.empty());
}

TEST_CASE("nft trace: the real fixture app") {
  // scripts/setup.sh builds the fixture before any suite runs (route_discovery_test needs it too):
  // a missing one is a broken setup, not a reason to pass.
  const fs::path standalone = KNEXT_FIXTURE_STANDALONE;
  const fs::path fixture = standalone.parent_path();
  REQUIRE_MESSAGE(fs::exists(standalone / "server.js"),
                  "build the fixture first (scripts/setup.sh): " << standalone);
  REQUIRE_MESSAGE(fs::exists(fixture / "next-server.js.nft.json"),
                  "build the fixture first (scripts/setup.sh): " << fixture);
  std::string app = fs::canonical(standalone).string();
  auto t = knext::trace_prewarm_files(app, {"/", "/slow"});
  CHECK(t.problems.empty());
  for (const auto& p : t.problems) MESSAGE(p);
  REQUIRE(t.files.size() > 100);
  CHECK(t.files[0] == app + "/server.js");
  std::set<std::string> unique(t.files.begin(), t.files.end());
  CHECK(unique.size() == t.files.size());
  for (const auto& f : t.files) {
    CAPTURE(f);
    CHECK(f.rfind(app + "/", 0) == 0);
    CHECK(fs::is_regular_file(f));
  }
  auto at = [&](const std::string& rel) {
    auto it = std::find(t.files.begin(), t.files.end(), app + "/" + rel);
    return it == t.files.end() ? -1L : static_cast<long>(it - t.files.begin());
  };
  long start_server = at("node_modules/next/dist/server/lib/start-server.js");
  long root_page = at(".next/server/app/page.js");
  long slow_page = at(".next/server/app/slow/page.js");
  long list_page = at(".next/server/app/list/page.js");
  CHECK(start_server > 0);
  CHECK(root_page > start_server);
  CHECK(slow_page > root_page);
  CHECK(list_page > slow_page);  // preloaded at startup, after the warm paths
  CHECK(at(".next/BUILD_ID") > 0);
  CHECK(at("node_modules/@img/sharp-libvips-linux-x64/lib/libvips-cpp.so.8.18.7") == -1);
  MESSAGE("fixture trace list: " << t.files.size() << " files, " << t.traces.size() << " traces, "
                                 << t.dropped << " dropped");
}
