#include "probes/warm/route_discovery.hpp"

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include <boost/json.hpp>

#include "cachewarm/text_file.hpp"
#include "probes/warm/app_urls.hpp"

namespace knext {
namespace {

namespace json = boost::json;

constexpr size_t kManifestLimit = 16u << 20;
constexpr size_t kMaxJsonDepth = 32;

struct Manifest {
  std::string name;  // its path, for messages
  json::value doc;   // null when the file does not exist
};

Error bad(const std::string& file, const std::string& what) {
  return Error{file + ": " + what, EINVAL};
}

Expected<Manifest> load(const std::filesystem::path& next_dir, const std::string& name) {
  const std::string path = (next_dir / name).string();
  auto text = read_text_file(path, kManifestLimit);
  if (!text.ok()) {
    if (text.error().code == ENOENT) return Manifest{path, nullptr};
    if (text.error().code == EFBIG) return bad(path, "over 16 MiB, larger than any manifest");
    return text.error();
  }
  json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value doc = json::parse(*text, ec, {}, opts);
  if (ec) return bad(path, "not JSON (" + ec.message() + ")");
  if (!doc.is_object()) return bad(path, "not a JSON object");
  return Manifest{path, std::move(doc)};
}

std::vector<std::string> split_segments(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string join_segments(const std::vector<std::string>& segments) {
  if (segments.empty()) return "/";
  std::string out;
  for (const auto& s : segments) out += "/" + s;
  return out;
}

bool is_group(const std::string& s) {
  return s.size() >= 2 && s.front() == '(' && s.back() == ')';
}

bool is_interception(const std::string& s) {
  for (std::string_view marker : {"(..)(..)", "(.)", "(..)", "(...)"}) {
    if (s.starts_with(marker)) return true;
  }
  return false;
}

// The parameter a dynamic segment needs ("[slug]" -> "slug", "[...all]" -> "all"), if any.
std::optional<std::string> param_of(const std::string& segment) {
  size_t open = segment.find('[');
  if (open == std::string::npos) return std::nullopt;
  size_t close = segment.find(']', open);
  if (close == std::string::npos) return std::nullopt;
  std::string name = segment.substr(open, segment.rfind(']') - open + 1);
  while (!name.empty() && (name.front() == '[' || name.front() == '.')) name.erase(0, 1);
  while (!name.empty() && name.back() == ']') name.pop_back();
  return name;
}

bool is_optional_catch_all(const std::string& segment) {
  return segment.starts_with("[[...") && segment.ends_with("]]");
}

bool is_dynamic(std::string_view route) {
  for (const auto& s : split_segments(route)) {
    if (param_of(s)) return true;
  }
  return false;
}

bool is_internal(const std::string& path) {
  static const std::set<std::string> kInternal = {
      "/_app", "/_document", "/_error", "/_not-found", "/_global-error", "/404", "/500"};
  return kInternal.contains(path) || path == "/_next" || path.starts_with("/_next/");
}

// Bytes a request line cannot carry as they are, percent-encoded.
std::string url_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("-._~!$&'()*+,;=:@/%[]").find(static_cast<char>(c)) !=
                     std::string_view::npos;
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class Collector {
 public:
  explicit Collector(const AppUrls& urls) : urls_(urls) {}

  void add(const std::string& path, RouteKind kind) { routes_.try_emplace(path, kind); }
  // A page that renders per request unless the prerender manifest lists a copy of it.
  void may_render_per_request(const std::string& path) { render_candidates_.insert(path); }
  void skip(const std::string& path, const std::string& why) { skipped_.try_emplace(path, why); }

  // A route pattern from the app or pages manifest: listed as is when it needs no parameter,
  // else left for the prerender manifest to supply its paths.
  void add_pattern(std::vector<std::string> segments, RouteKind kind) {
    std::string path = join_segments(segments);
    if (is_internal(path)) return skip(path, "Next.js internal");
    patterns_.insert(url_path(path));  // as requests spell it: "/café" arrives as "/caf%C3%A9"
    if (!is_dynamic(path)) return add(path, kind);
    if (is_optional_catch_all(segments.back())) {
      // "/shop/[[...slug]]" also answers "/shop" when the rest needs nothing.
      segments.pop_back();
      std::string prefix = join_segments(segments);
      if (!is_dynamic(prefix) && !is_internal(prefix)) add(prefix, kind);
    }
    dynamic_.try_emplace(path, *param_of(first_dynamic(path)));
  }

  void prerendered(const std::string& path) { prerendered_.insert(path); }

  void add_prerendered(const std::string& path, const std::string& src_route) {
    if (is_internal(path)) return skip(path, "Next.js internal");
    covered_.insert(src_route);
    add(path, RouteKind::kPrerendered);
  }

  RouteDiscovery finish() {
    for (const auto& [pattern, param] : dynamic_) {
      if (!covered_.contains(pattern)) skip(pattern, "needs parameter " + param);
    }
    RouteDiscovery out;
    out.urls = urls_;
    for (const auto& [path, kind] : routes_) {
      bool per_request = render_candidates_.contains(path) && !prerendered_.contains(path);
      out.routes.push_back({url_path(public_path(urls_, path)), kind, path, per_request});
    }
    for (const auto& [path, why] : skipped_) out.skipped.push_back(path + " (" + why + ")");
    out.patterns.assign(patterns_.begin(), patterns_.end());
    return out;
  }

 private:
  static std::string first_dynamic(const std::string& path) {
    for (const auto& s : split_segments(path)) {
      if (param_of(s)) return s;
    }
    return {};
  }

  const AppUrls& urls_;
  std::map<std::string, RouteKind> routes_;
  std::set<std::string> render_candidates_;
  std::set<std::string> prerendered_;  // every path the prerender manifest has a copy of
  std::map<std::string, std::string> skipped_;
  std::map<std::string, std::string> dynamic_;  // pattern -> first parameter it needs
  std::set<std::string> covered_;               // patterns with prerendered paths
  std::set<std::string> patterns_;
};

// Each entry of a manifest's string -> string map; an error when it is not one.
Status for_each_string(const Manifest& m, const json::object& obj,
                       const std::function<Status(const std::string&, const std::string&)>& fn) {
  for (const auto& [key, value] : obj) {
    const json::string* s = value.if_string();
    if (!s) return bad(m.name, "entry \"" + std::string(key) + "\" is not a string");
    if (key.empty() || key.front() != '/') {
      return bad(m.name, "entry \"" + std::string(key) + "\" does not start with '/'");
    }
    if (auto st = fn(std::string(key), std::string(*s)); !st.ok()) return st;
  }
  return ok_status();
}

Status read_app_paths(const Manifest& m, Collector& c) {
  if (m.doc.is_null()) return ok_status();
  return for_each_string(m, m.doc.as_object(), [&](const std::string& entry, const std::string&) {
    std::vector<std::string> segments = split_segments(entry);
    if (segments.empty() || (segments.back() != "page" && segments.back() != "route")) {
      return Status(bad(m.name, "entry \"" + entry + "\" ends neither /page nor /route"));
    }
    RouteKind kind = segments.back() == "page" ? RouteKind::kAppPage : RouteKind::kRouteHandler;
    segments.pop_back();
    std::vector<std::string> kept;
    for (const auto& s : segments) {
      if (is_interception(s)) {
        c.skip(entry, "interception route");
        return ok_status();
      }
      if (is_group(s) || s.front() == '@') continue;
      kept.push_back(s);
    }
    if (kind == RouteKind::kAppPage) c.may_render_per_request(join_segments(kept));
    c.add_pattern(kept, kind);
    return ok_status();
  });
}

// Static pages are listed once per locale ("/en/about" -> "pages/en/about.html"); pages that
// run code on the server by their route ("/ssr" -> "pages/ssr.js").
Status read_pages(const Manifest& m, const AppUrls& urls, Collector& c) {
  if (m.doc.is_null()) return ok_status();
  return for_each_string(
      m, m.doc.as_object(), [&](const std::string& key, const std::string& file) {
        auto page = default_locale_route(urls, key);
        if (!page) return ok_status();  // another locale's copy of a page listed as the default's
        bool api = *page == "/api" || page->starts_with("/api/");
        if (!api && file.ends_with(".js")) c.may_render_per_request(*page);
        c.add_pattern(split_segments(*page),
                      api ? RouteKind::kRouteHandler : RouteKind::kPagesPage);
        return ok_status();
      });
}

Status read_prerender(const Manifest& m, const AppUrls& urls, Collector& c) {
  if (m.doc.is_null()) return ok_status();
  const json::object& doc = m.doc.as_object();
  std::set<std::string> not_found;
  if (const json::value* list = doc.if_contains("notFoundRoutes")) {
    if (!list->is_array()) return bad(m.name, "\"notFoundRoutes\" is not an array");
    for (const auto& v : list->as_array()) {
      if (!v.is_string()) return bad(m.name, "\"notFoundRoutes\" holds a non-string");
      not_found.emplace(v.as_string());
    }
  }
  const json::value* routes = doc.if_contains("routes");
  if (!routes) return ok_status();
  if (!routes->is_object()) return bad(m.name, "\"routes\" is not an object");
  for (const auto& [key, value] : routes->as_object()) {
    auto localized = default_locale_route(urls, key);
    if (!localized) continue;  // another locale's copy
    std::string path = std::move(*localized);
    const json::object* route = value.if_object();
    if (!route) return bad(m.name, "route \"" + path + "\" is not an object");
    if (path.empty() || path.front() != '/') {
      return bad(m.name, "route \"" + path + "\" does not start with '/'");
    }
    const json::value* src = route->if_contains("srcRoute");
    if (src && !src->is_string() && !src->is_null()) {
      return bad(m.name, "route \"" + path + "\": \"srcRoute\" is not a string");
    }
    const json::value* status = route->if_contains("initialStatus");
    if (status && !status->is_number()) {
      return bad(m.name, "route \"" + path + "\": \"initialStatus\" is not a number");
    }
    c.prerendered(path);
    if (!src || !src->is_string() || !is_dynamic(src->as_string())) continue;
    if (not_found.contains(path) || (status && status->to_number<double>() >= 400)) {
      c.skip(path, "prerendered as an error page");
      continue;
    }
    c.add_prerendered(path, std::string(src->as_string()));
  }
  return ok_status();
}

}  // namespace

Expected<RouteDiscovery> discover_routes(const std::filesystem::path& app_dir) {
  const std::filesystem::path next = app_dir / ".next";
  auto app_paths = load(next, "server/app-paths-manifest.json");
  if (!app_paths.ok()) return app_paths.error();
  auto pages = load(next, "server/pages-manifest.json");
  if (!pages.ok()) return pages.error();
  auto prerender = load(next, "prerender-manifest.json");
  if (!prerender.ok()) return prerender.error();
  auto routes = load(next, "routes-manifest.json");
  if (!routes.ok()) return routes.error();
  auto server_files = load(next, "required-server-files.json");
  if (!server_files.ok()) return server_files.error();
  if (app_paths->doc.is_null() && pages->doc.is_null()) {
    return Error{next.string() + ": no server/app-paths-manifest.json nor " +
                     "server/pages-manifest.json (not a Next.js build?)",
                 ENOENT};
  }
  auto urls = app_urls_from(routes->doc, routes->name, server_files->doc, server_files->name);
  if (!urls.ok()) return urls.error();

  Collector c(*urls);
  for (auto st : {read_app_paths(*app_paths, c), read_pages(*pages, *urls, c),
                  read_prerender(*prerender, *urls, c)}) {
    if (!st.ok()) return st.error();
  }
  return c.finish();
}

bool warm_skip_matches(std::string_view glob, std::string_view path) {
  constexpr size_t kMaxLen = 1024;  // the recursion is at most glob + path deep
  if (glob.size() > kMaxLen || path.size() > kMaxLen) return false;
  const size_t g = glob.size(), p = path.size();
  // memo[gi * (p + 1) + pi]: 0 unknown, 1 no, 2 yes. Each state is computed once.
  std::vector<unsigned char> memo((g + 1) * (p + 1), 0);
  std::function<bool(size_t, size_t)> match = [&](size_t gi, size_t pi) -> bool {
    unsigned char& m = memo[gi * (p + 1) + pi];
    if (m) return m == 2;
    bool r = false;
    if (gi == g) {
      r = pi == p;
    } else if (glob.substr(gi).starts_with("/**") && (gi + 3 == g || glob[gi + 3] == '/') &&
               match(gi + 3, pi)) {
      r = true;  // "/**" standing for no segment at all
    } else if (glob.substr(gi).starts_with("**")) {
      for (size_t k = pi; k <= p && !r; ++k) r = match(gi + 2, k);
    } else if (glob[gi] == '*') {
      for (size_t k = pi; k <= p && !r; ++k) {
        if (k > pi && path[k - 1] == '/') break;
        r = match(gi + 1, k);
      }
    } else {
      r = pi < p && path[pi] == glob[gi] && match(gi + 1, pi + 1);
    }
    m = r ? 2 : 1;
    return r;
  };
  return match(0, 0);
}

bool warm_skipped(const std::vector<std::string>& globs, std::string_view path) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& glob) { return warm_skip_matches(glob, path); });
}

const char* route_kind_name(RouteKind kind) {
  switch (kind) {
    case RouteKind::kAppPage:
      return "app-page";
    case RouteKind::kPagesPage:
      return "pages-page";
    case RouteKind::kRouteHandler:
      return "route-handler";
    case RouteKind::kPrerendered:
      return "prerendered";
  }
  return "unknown";
}

}  // namespace knext
