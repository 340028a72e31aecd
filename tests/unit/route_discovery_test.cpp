// `--warm-path auto` route discovery: the fixture's real build, then small hostile builds.
#include "probes/warm/route_discovery.hpp"

#include <doctest/doctest.h>

#include <unistd.h>
#include <algorithm>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/scratch_dir.hpp"

namespace fs = std::filesystem;
using knext::RouteKind;

namespace {

std::map<std::string, RouteKind> by_path(const knext::RouteDiscovery& d) {
  std::map<std::string, RouteKind> out;
  for (const auto& r : d.routes) {
    CHECK_MESSAGE(out.emplace(r.path, r.kind).second, "listed twice: " << r.path);
  }
  return out;
}

bool has_skipped(const knext::RouteDiscovery& d, const std::string& prefix) {
  for (const auto& s : d.skipped) {
    if (s.starts_with(prefix)) return true;
  }
  return false;
}

// A scratch standalone dir whose .next holds the given manifests.
class FakeBuild {
 public:
  FakeBuild() { fs::create_directories(next("server")); }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(next(rel), std::ios::binary) << text;
  }
  fs::path next(const std::string& rel) const { return fs::path(dir_.path()) / ".next" / rel; }
  fs::path path() const { return dir_.path(); }

 private:
  knext::test::ScratchDir dir_{"knext-routes"};
};

void check_error_names(const fs::path& app, const std::string& file) {
  auto d = knext::discover_routes(app);
  REQUIRE_FALSE(d.ok());
  CHECK_MESSAGE(d.error().message.find(file) != std::string::npos, d.error().message);
}

}  // namespace

TEST_CASE("route discovery: the fixture's real build lists every GET route and nothing internal") {
  const fs::path app = KNEXT_FIXTURE_STANDALONE;
  REQUIRE_MESSAGE(fs::exists(app / ".next/server/app-paths-manifest.json"),
                  "build the fixture first (scripts/setup.sh): " << app);
  auto d = knext::discover_routes(app);
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  const std::map<std::string, RouteKind> expected = {
      {"/", RouteKind::kAppPage},
      {"/dynamic", RouteKind::kAppPage},
      {"/list", RouteKind::kAppPage},
      {"/search", RouteKind::kAppPage},
      {"/slow", RouteKind::kAppPage},
      {"/posts/hello", RouteKind::kPrerendered},  // generateStaticParams
      {"/posts/world", RouteKind::kPrerendered},
      {"/legacy", RouteKind::kPagesPage},
      {"/api/checksum", RouteKind::kRouteHandler},
      {"/api/health", RouteKind::kRouteHandler},
      // POST-only, but no build artefact records a handler's methods (see the header): listed,
      // and its 405 ends its warm-up.
      {"/api/echo", RouteKind::kRouteHandler},
  };
  CHECK(by_path(*d) == expected);
  CHECK(has_skipped(*d, "/users/[id] (needs parameter id)"));
  for (const char* internal :
       {"/_not-found", "/_global-error", "/_app", "/_document", "/_error", "/404"}) {
    CHECK_MESSAGE(has_skipped(*d, std::string(internal) + " (Next.js internal)"), internal);
  }
  CHECK_FALSE(has_skipped(*d, "/posts/[slug]"));  // its paths are listed instead
  // Every pattern, dynamic ones too, for matching requested paths (traffic_record.hpp).
  for (const char* pattern : {"/", "/posts/[slug]", "/users/[id]", "/legacy", "/api/checksum"}) {
    CHECK_MESSAGE(std::find(d->patterns.begin(), d->patterns.end(), pattern) != d->patterns.end(),
                  pattern);
  }
  CHECK(std::find(d->patterns.begin(), d->patterns.end(), "/_not-found") == d->patterns.end());
  CHECK(d->urls.base_path.empty());
}

TEST_CASE("route discovery: groups, slots, interception, catch-alls, basePath as Next maps them") {
  FakeBuild b;
  b.write("server/app-paths-manifest.json", R"({
    "/(shop)/cart/page": "app/(shop)/cart/page.js",
    "/dashboard/@team/page": "app/dashboard/@team/page.js",
    "/dashboard/page": "app/dashboard/page.js",
    "/feed/(..)photo/[id]/page": "app/feed/(..)photo/[id]/page.js",
    "/docs/[[...slug]]/page": "app/docs/[[...slug]]/page.js",
    "/files/[...path]/route": "app/files/[...path]/route.js",
    "/sitemap.xml/route": "app/sitemap.xml/route.js",
    "/café/page": "app/café/page.js",
    "/_not-found/page": "app/_not-found/page.js"})");
  b.write("server/pages-manifest.json", R"({
    "/_app": "pages/_app.js", "/500": "pages/500.html", "/blog/[id]": "pages/blog/[id].js",
    "/api/legacy": "pages/api/legacy.js", "/about": "pages/about.html"})");
  b.write("prerender-manifest.json", R"({"version": 4, "notFoundRoutes": ["/blog/gone"],
    "routes": {
      "/blog/1": {"srcRoute": "/blog/[id]", "dataRoute": "/_next/data/x/blog/1.json"},
      "/blog/gone": {"srcRoute": "/blog/[id]"},
      "/blog/missing": {"srcRoute": "/blog/[id]", "initialStatus": 404},
      "/about": {"srcRoute": null},
      "/cart": {"srcRoute": "/cart"}},
    "dynamicRoutes": {}})");
  b.write("routes-manifest.json", R"({"version": 3, "basePath": "/base"})");
  auto d = knext::discover_routes(b.path());
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  const std::map<std::string, RouteKind> expected = {
      {"/base/cart", RouteKind::kAppPage},
      {"/base/dashboard", RouteKind::kAppPage},
      {"/base/docs", RouteKind::kAppPage},
      {"/base/sitemap.xml", RouteKind::kRouteHandler},
      {"/base/caf%C3%A9", RouteKind::kAppPage},
      {"/base/about", RouteKind::kPagesPage},
      {"/base/api/legacy", RouteKind::kRouteHandler},
      {"/base/blog/1", RouteKind::kPrerendered},
  };
  CHECK(by_path(*d) == expected);
  CHECK(has_skipped(*d, "/feed/(..)photo/[id]/page (interception route)"));
  CHECK(has_skipped(*d, "/docs/[[...slug]] (needs parameter slug)"));
  CHECK(has_skipped(*d, "/files/[...path] (needs parameter path)"));
  CHECK(has_skipped(*d, "/blog/gone (prerendered as an error page)"));
  CHECK(has_skipped(*d, "/blog/missing (prerendered as an error page)"));
  CHECK(has_skipped(*d, "/500 (Next.js internal)"));
  CHECK(d->urls.base_path == "/base");
  for (const char* pattern : {"/cart", "/docs/[[...slug]]", "/files/[...path]", "/blog/[id]",
                              "/caf%C3%A9", "/dashboard"}) {
    CHECK_MESSAGE(std::find(d->patterns.begin(), d->patterns.end(), pattern) != d->patterns.end(),
                  pattern);
  }
}

TEST_CASE("route discovery: a pages-only build without the optional manifests") {
  FakeBuild b;
  b.write("server/pages-manifest.json", R"({"/": "pages/index.js"})");
  auto d = knext::discover_routes(b.path());
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  CHECK(by_path(*d) == std::map<std::string, RouteKind>{{"/", RouteKind::kPagesPage}});
}

TEST_CASE("route discovery: malformed or hostile manifests are an error naming the file") {
  SUBCASE("no build at all") {
    FakeBuild b;
    check_error_names(b.path(), "app-paths-manifest.json");
  }
  SUBCASE("not JSON") {
    FakeBuild b;
    b.write("server/app-paths-manifest.json", "{\"/page\": \"app/page.js\"");
    check_error_names(b.path(), "server/app-paths-manifest.json");
  }
  SUBCASE("a JSON array instead of an object") {
    FakeBuild b;
    b.write("server/pages-manifest.json", "[\"/\"]");
    check_error_names(b.path(), "server/pages-manifest.json");
  }
  SUBCASE("an entry that is not a string") {
    FakeBuild b;
    b.write("server/app-paths-manifest.json", R"({"/page": 7})");
    check_error_names(b.path(), "server/app-paths-manifest.json");
  }
  SUBCASE("an app entry that is neither a page nor a route") {
    FakeBuild b;
    b.write("server/app-paths-manifest.json", R"({"/layout": "app/layout.js"})");
    check_error_names(b.path(), "server/app-paths-manifest.json");
  }
  SUBCASE("prerender routes of the wrong type") {
    FakeBuild b;
    b.write("server/pages-manifest.json", R"({"/": "pages/index.js"})");
    b.write("prerender-manifest.json", R"({"routes": {"/a": {"srcRoute": 3}}})");
    check_error_names(b.path(), "prerender-manifest.json");
    b.write("prerender-manifest.json", R"({"routes": ["/a"]})");
    check_error_names(b.path(), "prerender-manifest.json");
  }
  SUBCASE("a basePath that is not a path") {
    FakeBuild b;
    b.write("server/pages-manifest.json", R"({"/": "pages/index.js"})");
    b.write("routes-manifest.json", R"({"basePath": "base/"})");
    check_error_names(b.path(), "routes-manifest.json");
  }
  SUBCASE("nested deeper than any manifest") {
    FakeBuild b;
    b.write("prerender-manifest.json", std::string(10000, '[') + std::string(10000, ']'));
    b.write("server/pages-manifest.json", R"({"/": "pages/index.js"})");
    check_error_names(b.path(), "prerender-manifest.json");
  }
  SUBCASE("huge") {
    FakeBuild b;
    b.write("server/pages-manifest.json", "");
    REQUIRE(truncate(b.next("server/pages-manifest.json").c_str(), 64l << 20) == 0);
    check_error_names(b.path(), "server/pages-manifest.json");
  }
  SUBCASE("a directory in its place") {
    FakeBuild b;
    fs::create_directory(b.next("server/app-paths-manifest.json"));
    check_error_names(b.path(), "server/app-paths-manifest.json");
  }
  SUBCASE("a symlink to a device, to a directory, or in a loop") {
    FakeBuild b;
    fs::create_symlink("/dev/zero", b.next("server/app-paths-manifest.json"));
    check_error_names(b.path(), "server/app-paths-manifest.json");
    fs::remove(b.next("server/app-paths-manifest.json"));
    fs::create_symlink("/", b.next("server/app-paths-manifest.json"));
    check_error_names(b.path(), "server/app-paths-manifest.json");
    fs::remove(b.next("server/app-paths-manifest.json"));
    fs::create_symlink("app-paths-manifest.json", b.next("server/app-paths-manifest.json"));
    check_error_names(b.path(), "server/app-paths-manifest.json");
  }
}

TEST_CASE("warm_skip_matches: '*' stays within a segment, '**' crosses them") {
  using knext::warm_skip_matches;
  CHECK(warm_skip_matches("/api/health", "/api/health"));
  CHECK_FALSE(warm_skip_matches("/api/health", "/api/healthz"));
  CHECK(warm_skip_matches("/api/*", "/api/health"));
  CHECK_FALSE(warm_skip_matches("/api/*", "/api/v1/health"));
  CHECK_FALSE(warm_skip_matches("/api/*", "/api"));
  CHECK(warm_skip_matches("/api/**", "/api/v1/health"));
  CHECK(warm_skip_matches("/api/**", "/api"));
  CHECK_FALSE(warm_skip_matches("/api/**", "/apis"));
  CHECK(warm_skip_matches("/**/edit", "/edit"));
  CHECK(warm_skip_matches("/**/edit", "/a/b/edit"));
  CHECK_FALSE(warm_skip_matches("/**/edit", "/a/b/editor"));
  CHECK(warm_skip_matches("/posts/*-draft", "/posts/hello-draft"));
  CHECK(warm_skip_matches("**", "/anything/at/all"));
  CHECK(warm_skip_matches("/*", "/"));
  CHECK_FALSE(warm_skip_matches("", "/"));
  CHECK_FALSE(warm_skip_matches(std::string(5000, '*'), "/a"));  // over the length cap
  // Many stars against a long non-match finishes (each state is computed once).
  CHECK_FALSE(warm_skip_matches("/**a**a**a**a**a**a**b", "/" + std::string(900, 'a')));
  CHECK(std::string(knext::route_kind_name(RouteKind::kPrerendered)) == "prerendered");
}
