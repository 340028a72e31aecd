// The app's URL space (basePath, trailingSlash, the Pages Router's i18n) and the critical path
// `--warm-path auto` picks without --warm-path, on small builds laid out as Next 14-16 write them.
#include "probes/warm/critical_path.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "probes/warm/app_urls.hpp"
#include "probes/warm/route_discovery.hpp"
#include "probes/warm/warm_plan.hpp"
#include "tests/unit/scratch_dir.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;
using knext::AppUrls;
using Paths = std::vector<std::string>;

namespace {

class Build {
 public:
  Build() { fs::create_directories(fs::path(dir_.path()) / ".next" / "server"); }
  Build& file(const std::string& rel, const std::string& text) {
    std::ofstream(fs::path(dir_.path()) / ".next" / rel, std::ios::binary) << text;
    return *this;
  }
  knext::RouteDiscovery discover() const {
    auto d = knext::discover_routes(dir_.path());
    REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message));
    return *d;
  }
  std::string error() const {
    auto d = knext::discover_routes(dir_.path());
    REQUIRE_FALSE(d.ok());
    return d.error().message;
  }

 private:
  knext::test::ScratchDir dir_{"knext-critical"};
};

AppUrls urls(std::string base_path, bool trailing_slash = false) {
  AppUrls u;
  u.base_path = std::move(base_path);
  u.trailing_slash = trailing_slash;
  return u;
}

std::map<std::string, bool> per_request(const knext::RouteDiscovery& d) {
  std::map<std::string, bool> out;
  for (const auto& r : d.routes) out[r.path] = r.per_request;
  return out;
}

// The Next 14 Pages Router shape of tests/fixtures/matrix/next14-pages, as its build wrote it.
constexpr const char* kPagesManifest =
    R"({"/_app":"pages/_app.js","/_error":"pages/_error.js","/api/hello":"pages/api/hello.js",
        "/":"pages/index.html","/isr":"pages/isr.js","/posts/[id]":"pages/posts/[id].js",
        "/ssr":"pages/ssr.js","/_document":"pages/_document.js","/404":"pages/404.html"})";
constexpr const char* kPagesPrerender =
    R"({"version":4,"routes":{"/isr":{"initialRevalidateSeconds":60,"srcRoute":null,
        "dataRoute":"/_next/data/b/isr.json"}},"dynamicRoutes":{},"notFoundRoutes":[]})";

// An App Router build: static /, /about; /search and /items/[id] rendered per request.
constexpr const char* kAppPaths =
    R"({"/_not-found/page":"app/_not-found/page.js","/page":"app/page.js",
        "/about/page":"app/about/page.js","/search/page":"app/search/page.js",
        "/items/[id]/page":"app/items/[id]/page.js","/api/ping/route":"app/api/ping/route.js"})";
constexpr const char* kAppPrerender =
    R"({"version":4,"routes":{"/":{"srcRoute":"/","dataRoute":"/index.rsc"},
        "/about":{"srcRoute":"/about","dataRoute":"/about.rsc"},
        "/_not-found":{"srcRoute":"/_not-found","initialStatus":404}},"dynamicRoutes":{}})";

}  // namespace

TEST_CASE("public_path: basePath prefixes every path, trailingSlash adds '/' except to files") {
  AppUrls none;
  CHECK(knext::public_path(none, "/") == "/");
  CHECK(knext::public_path(none, "/ssr") == "/ssr");
  AppUrls shop = urls("/shop");
  CHECK(knext::public_path(shop, "/") == "/shop");
  CHECK(knext::public_path(shop, "/search") == "/shop/search");
  AppUrls slash = urls("", true);
  CHECK(knext::public_path(slash, "/") == "/");
  CHECK(knext::public_path(slash, "/a/b") == "/a/b/");
  CHECK(knext::public_path(slash, "/feed.xml") == "/feed.xml");  // Next redirects file/ to file
  AppUrls both = urls("/shop", true);
  CHECK(knext::public_path(both, "/") == "/shop/");  // Next's basePath -> basePath/ redirect
  CHECK(knext::public_path(both, "/search") == "/shop/search/");
}

TEST_CASE("default_locale_route: the default locale unprefixed, other locales' copies dropped") {
  AppUrls i18n;
  i18n.locales = {"en", "fr", "de-CH"};
  i18n.default_locale = "en";
  CHECK(knext::default_locale_route(i18n, "/en") == "/");
  CHECK(knext::default_locale_route(i18n, "/en/about") == "/about");
  CHECK(knext::default_locale_route(i18n, "/fr/about") == std::nullopt);
  CHECK(knext::default_locale_route(i18n, "/de-CH") == std::nullopt);
  CHECK(knext::default_locale_route(i18n, "/ssr") == "/ssr");  // code pages are not per locale
  CHECK(knext::default_locale_route(i18n, "/english") == "/english");
  CHECK(knext::default_locale_route(AppUrls{}, "/en/about") == "/en/about");
}

TEST_CASE("app_urls_from: wrong types and impossible values are errors naming the file") {
  auto err = [](const char* routes, const char* files) {
    auto urls = knext::app_urls_from(json::parse(routes), "routes-manifest.json",
                                     json::parse(files), "required-server-files.json");
    REQUIRE_FALSE(urls.ok());
    return urls.error().message;
  };
  CHECK(err(R"({"basePath":7})", "null").starts_with("routes-manifest.json: \"basePath\""));
  CHECK(err(R"({"basePath":"shop"})", "null").starts_with("routes-manifest.json"));
  CHECK(err(R"({"i18n":[]})", "null").starts_with("routes-manifest.json: \"i18n\""));
  CHECK(err(R"({"i18n":{"locales":["en"],"defaultLocale":"fr"}})", "null").find("not in") !=
        std::string::npos);
  CHECK(err(R"({"i18n":{"locales":["en/../x"],"defaultLocale":"en"}})", "null").find("locale") !=
        std::string::npos);
  CHECK(err("null", R"({"config":{"trailingSlash":"yes"}})")
            .starts_with("required-server-files.json: \"config.trailingSlash\""));
  CHECK(err("null", R"({"config":[]})").starts_with("required-server-files.json"));
  auto fine = knext::app_urls_from(
      json::parse(R"({"basePath":"/shop","i18n":{"locales":["en","fr"],"defaultLocale":"fr"}})"),
      "r", json::parse(R"({"config":{"trailingSlash":true}})"), "f");
  REQUIRE(fine.ok());
  CHECK(fine->base_path == "/shop");
  CHECK(fine->trailing_slash);
  CHECK(fine->default_locale == "fr");
  CHECK(fine->locales == Paths{"en", "fr"});
}

TEST_CASE(
    "Pages Router, static /: getServerSideProps first, then /; ISR and HTML are not per request") {
  Build b;
  b.file("server/pages-manifest.json", kPagesManifest)
      .file("prerender-manifest.json", kPagesPrerender);
  auto d = b.discover();
  CHECK(per_request(d) ==
        std::map<std::string, bool>{
            {"/", false}, {"/api/hello", false}, {"/isr", false}, {"/ssr", true}});
  CHECK(knext::auto_critical_paths(d) == Paths{"/", "/ssr"});
}

TEST_CASE("App Router with basePath, static /: /shop, then the per-request page under it") {
  Build b;
  b.file("server/app-paths-manifest.json", kAppPaths)
      .file("prerender-manifest.json", kAppPrerender)
      .file("routes-manifest.json", R"({"version":3,"basePath":"/shop"})");
  auto d = b.discover();
  CHECK(per_request(d) == std::map<std::string, bool>{{"/shop", false},
                                                      {"/shop/about", false},
                                                      {"/shop/api/ping", false},
                                                      {"/shop/search", true}});
  CHECK(knext::auto_critical_paths(d) == Paths{"/shop", "/shop/search"});

  b.file("required-server-files.json", R"({"version":1,"config":{"trailingSlash":true}})");
  auto slashed = b.discover();
  CHECK(knext::auto_critical_paths(slashed) == Paths{"/shop/", "/shop/search/"});
  for (const auto& r : slashed.routes) CHECK_MESSAGE(r.path.ends_with("/"), r.path);
}

TEST_CASE("Pages Router with i18n: locale copies fold into the default locale's unprefixed paths") {
  Build b;
  b.file("server/pages-manifest.json",
         R"({"/_app":"pages/_app.js","/en":"pages/en.html","/fr":"pages/fr.html",
             "/en/about":"pages/en/about.html","/fr/about":"pages/fr/about.html",
             "/isr":"pages/isr.js","/ssr":"pages/ssr.js","/posts/[id]":"pages/posts/[id].js"})")
      .file("prerender-manifest.json",
            R"({"routes":{"/en/isr":{"srcRoute":null},"/fr/isr":{"srcRoute":null},
                "/en/posts/1":{"srcRoute":"/posts/[id]"},"/fr/posts/1":{"srcRoute":"/posts/[id]"}}})")
      .file("routes-manifest.json", R"({"i18n":{"locales":["en","fr"],"defaultLocale":"en"}})");
  auto d = b.discover();
  CHECK(per_request(d) ==
        std::map<std::string, bool>{
            {"/", false}, {"/about", false}, {"/isr", false}, {"/posts/1", false}, {"/ssr", true}});
  CHECK(knext::auto_critical_paths(d) == Paths{"/", "/ssr"});
}

TEST_CASE("auto critical paths: / alone when it renders per request or nothing else does") {
  SUBCASE("dynamic /") {
    Build b;
    b.file("server/app-paths-manifest.json",
           R"({"/page":"app/page.js","/search/page":"app/search/page.js"})");
    CHECK(knext::auto_critical_paths(b.discover()) == Paths{"/"});
  }
  SUBCASE("everything prerendered") {
    Build b;
    b.file("server/pages-manifest.json", R"({"/":"pages/index.html","/a":"pages/a.html"})");
    CHECK(knext::auto_critical_paths(b.discover()) == Paths{"/"});
  }
  SUBCASE("route handlers do not count as pages") {
    Build b;
    b.file("server/app-paths-manifest.json",
           R"({"/page":"app/page.js","/api/x/route":"app/api/x/route.js"})")
        .file("prerender-manifest.json", R"({"routes":{"/":{"srcRoute":"/"}}})");
    CHECK(knext::auto_critical_paths(b.discover()) == Paths{"/"});
  }
  SUBCASE("no / page: the likeliest page, never a path that would answer 404") {
    Build b;
    b.file("server/pages-manifest.json",
           R"({"/docs/b":"pages/docs/b.html","/zz":"pages/zz.html","/ab":"pages/ab.html"})");
    CHECK(knext::auto_critical_paths(b.discover()) == Paths{"/ab"});
  }
  SUBCASE("no / page, a per-request page: that page alone") {
    Build b;
    b.file("server/pages-manifest.json", R"({"/docs":"pages/docs.html","/feed":"pages/feed.js"})");
    CHECK(knext::auto_critical_paths(b.discover()) == Paths{"/feed"});
  }
  SUBCASE("fewest segments, then the shortest, then byte order") {
    Build b;
    b.file("server/app-paths-manifest.json",
           R"({"/page":"app/page.js","/a/b/page":"app/a/b/page.js","/slow/page":"app/slow/page.js",
               "/list/page":"app/list/page.js","/dynamic/page":"app/dynamic/page.js"})")
        .file("prerender-manifest.json", R"({"routes":{"/":{"srcRoute":"/"}}})");
    CHECK(knext::auto_critical_paths(b.discover()) == Paths{"/", "/list"});
  }
  SUBCASE("no routes at all: / as the basePath gives it") {
    knext::RouteDiscovery none;
    none.urls.base_path = "/shop";
    CHECK(knext::auto_critical_paths(none) == Paths{"/shop"});
  }
}

TEST_CASE("warm plan: the build's critical paths replace /, a --warm-path is taken as written") {
  knext::WarmPlanInput in;
  in.auto_mode = true;
  in.hold_first = true;
  in.discovered = {"/shop", "/shop/about", "/shop/search"};
  in.auto_critical = {"/shop", "/shop/search"};
  auto plan = knext::plan_warm_paths(in, std::nullopt);
  CHECK(plan.critical == Paths{"/shop"});
  CHECK(plan.deferred == Paths{"/shop/search"});
  CHECK(plan.background == Paths{"/shop/about"});
  CHECK(knext::asked_for(in, "/shop/search"));
  CHECK(knext::asked_for(in, "/shop"));
  CHECK_FALSE(knext::asked_for(in, "/"));

  in.explicit_paths = {"/"};  // by hand: no basePath added, even if it answers 404
  auto by_hand = knext::plan_warm_paths(in, std::nullopt);
  CHECK(by_hand.critical == Paths{"/"});
  CHECK(knext::asked_for(in, "/"));
  CHECK_FALSE(knext::asked_for(in, "/shop/search"));
}

TEST_CASE(
    "auto critical paths of the fixture's real build: /, then its likeliest per-request page") {
  const fs::path app = KNEXT_FIXTURE_STANDALONE;
  REQUIRE_MESSAGE(fs::exists(app / ".next/server/app-paths-manifest.json"),
                  "build the fixture first (scripts/setup.sh): " << app);
  auto d = knext::discover_routes(app);
  REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message));
  auto flags = per_request(*d);
  // The premise: its / is static, its pages that read the request are not prerendered.
  CHECK_FALSE(flags.at("/"));
  for (const char* page : {"/dynamic", "/list", "/search", "/slow", "/legacy"}) {
    CHECK_MESSAGE(flags.at(page), page);
  }
  CHECK_FALSE(flags.at("/posts/hello"));  // generateStaticParams
  CHECK(knext::auto_critical_paths(*d) == Paths{"/", "/list"});
}
