#pragma once
// `--warm-path auto`: every GET route of a Next.js standalone build, read from the build's own
// manifests (formats as Next 16 writes and reads them, node_modules/next/dist):
//   .next/server/app-paths-manifest.json  "/(shop)/posts/[slug]/page" -> "app/.../page.js"
//                                         (entry names end /page or /route; normalizeAppPath
//                                         drops "(group)" and "@slot" segments and that leaf)
//   .next/server/pages-manifest.json      "/legacy" -> "pages/legacy.js" ("/_app", "/_document",
//                                         "/_error", "/404", "/500" are Next's own)
//   .next/prerender-manifest.json         "routes": {"/posts/hello": {"srcRoute":
//                                         "/posts/[slug]", "initialStatus"?: 404, ...}}
//   .next/routes-manifest.json,           basePath, trailingSlash and the Pages Router's i18n
//   .next/required-server-files.json      locales: every path is one to request (app_urls.hpp)
// A missing manifest lists nothing; one that is there but unreadable or malformed is an error.
//
// What no manifest says: which HTTP methods an app route handler exports. Next learns them by
// loading the module (AppRouteRouteModule reads the userland exports), and nothing in the
// build records them, so every route handler is listed: one without GET answers 405, which
// ends its warm-up. Pages-router API routes are listed the same way. Middleware
// (functions-config-manifest.json) is not a route and is not listed.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "probes/warm/app_urls.hpp"

namespace knext {

enum class RouteKind { kAppPage, kPagesPage, kRouteHandler, kPrerendered };

struct DiscoveredRoute {
  // What to GET, basePath (and trailingSlash's '/') included: "/", "/posts/hello", "/api/x".
  std::string path;
  RouteKind kind;
  std::string route;  // as the build names it, before basePath and locale: "/", "/posts/hello"
  // A page the server renders on every request: a Pages page whose build output is code, not
  // HTML, that the prerender manifest has no copy of (getServerSideProps, getInitialProps), or
  // an App Router page it has no copy of (it reads the request, or opted out of prerendering).
  bool per_request = false;
};

struct RouteDiscovery {
  AppUrls urls;
  std::vector<DiscoveredRoute> routes;  // sorted by route (before basePath), each path once
  std::vector<std::string> skipped;     // "path (why)", e.g. "/users/[id] (needs parameter id)"
  // Every page and route handler pattern, dynamic ones included, without basePath and without
  // "(group)"/"@slot" segments ("/posts/[slug]"), percent-encoded as routes are: what requested
  // paths are matched against.
  std::vector<std::string> patterns;
};

// app_dir: the directory holding server.js and .next/ (the standalone dir). Each manifest is
// opened once, checked to be a regular file of at most 16 MiB through that fd, and parsed;
// an error names the file and what was wrong.
Expected<RouteDiscovery> discover_routes(const std::filesystem::path& app_dir);

// Glob match for --warm-skip against a whole path: '*' matches any run of characters within a
// segment (no '/'), '**' any run including '/'; "/**" may also match nothing, so "/blog/**"
// matches "/blog" as well as "/blog/a/b". Everything else matches itself.
bool warm_skip_matches(std::string_view glob, std::string_view path);
// Any of the --warm-skip globs matches `path`.
bool warm_skipped(const std::vector<std::string>& globs, std::string_view path);

// "app-page", "pages-page", "route-handler", "prerendered".
const char* route_kind_name(RouteKind kind);

}  // namespace knext
