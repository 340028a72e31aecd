#pragma once
// The URL space of a Next.js build: how a route as the build names it ("/", "/posts/hello")
// becomes the path a request must carry. Read from the standalone .next
// (node_modules/next/dist, 14.2 to 16):
//   routes-manifest.json          "basePath": "/shop" prefixes every path ("/" is "/shop");
//                                 "i18n": {"locales": [...], "defaultLocale": "en"} (Pages
//                                 Router only: its static pages are built once per locale,
//                                 "/en/about", and the default locale answers unprefixed)
//   required-server-files.json    "config": {"trailingSlash": true}: Next redirects (308) a
//                                 path whose last segment has no '.' to the same path with a
//                                 trailing '/' (lib/load-custom-routes.js), the basePath too;
//                                 a request for the redirect warms nothing.
#include <boost/json/fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace knext {

struct AppUrls {
  std::string base_path;  // "" or "/name..." without a trailing '/'
  bool trailing_slash = false;
  std::vector<std::string> locales;  // Pages Router i18n; empty: none
  std::string default_locale;
};

// routes_manifest, server_files: the parsed files, null when absent; *_name name them in errors.
// A field of the wrong type or a basePath or locale that cannot be one is an error.
Expected<AppUrls> app_urls_from(const boost::json::value& routes_manifest,
                                const std::string& routes_name,
                                const boost::json::value& server_files,
                                const std::string& files_name);

// The path to request for a route path of the build: basePath prefixed, and with
// trailingSlash a '/' appended unless the last segment names a file.
std::string public_path(const AppUrls& urls, std::string_view route);

// A Pages Router path of the build as the default locale answers it: "/en/about" -> "/about",
// "/en" -> "/"; nullopt for another locale's copy ("/fr/about"), which runs the same code.
// Paths without a locale prefix, and every path without i18n, are returned as they are.
std::optional<std::string> default_locale_route(const AppUrls& urls, std::string_view path);

}  // namespace knext
