#include "cachewarm/page_cache/nft_trace.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "cachewarm/page_cache/nft_trace_json.hpp"
#include "cachewarm/text_file.hpp"

namespace knext {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTraceBytes = 16u << 20;
constexpr size_t kMaxManifestBytes = 4u << 20;

std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (!seg.empty()) out.push_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// How well one route segment matches, for ranking: static beats [param] beats catch-alls.
enum class SegmentKind { kStatic, kParam, kCatchAll, kOptionalCatchAll };
SegmentKind kind_of(std::string_view seg) {
  if (starts_with(seg, "[[...") && ends_with(seg, "]]")) return SegmentKind::kOptionalCatchAll;
  if (starts_with(seg, "[...") && ends_with(seg, "]")) return SegmentKind::kCatchAll;
  if (starts_with(seg, "[") && ends_with(seg, "]")) return SegmentKind::kParam;
  return SegmentKind::kStatic;
}

// Lower is more specific; nullopt when the route does not match.
std::optional<int> match_cost(const std::vector<std::string_view>& route,
                              const std::vector<std::string_view>& path, size_t ri = 0,
                              size_t pi = 0) {
  if (ri == route.size()) return pi == path.size() ? std::optional<int>(0) : std::nullopt;
  switch (kind_of(route[ri])) {
    case SegmentKind::kStatic:
      if (pi < path.size() && route[ri] == path[pi]) return match_cost(route, path, ri + 1, pi + 1);
      return std::nullopt;
    case SegmentKind::kParam:
      if (pi < path.size()) {
        if (auto rest = match_cost(route, path, ri + 1, pi + 1)) return *rest + 1;
      }
      return std::nullopt;
    case SegmentKind::kCatchAll:
    case SegmentKind::kOptionalCatchAll: {
      // A catch-all is the last segment of a route.
      if (ri + 1 != route.size()) return std::nullopt;
      bool optional = kind_of(route[ri]) == SegmentKind::kOptionalCatchAll;
      if (pi == path.size() && !optional) return std::nullopt;
      return optional ? 1000 : 100;
    }
  }
  return std::nullopt;
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_module_code(std::string_view path) {
  for (std::string_view ext : {".js", ".cjs", ".mjs", ".json"}) {
    if (ends_with(path, ext)) return true;
  }
  return false;
}

// `dir` with the trailing components `rel` ("apps/web") removed, if it ends with them.
std::optional<fs::path> strip_suffix(const fs::path& dir, const std::string& rel) {
  fs::path out = dir;
  auto segs = split_segments(rel);
  for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
    if (*it == ".") continue;
    if (out.filename() != *it) return std::nullopt;
    out = out.parent_path();
  }
  return out;
}

// `path` below `root` (both lexically normal and absolute), as a relative path; nullopt
// when it is not inside.
std::optional<fs::path> inside(const fs::path& path, const fs::path& root) {
  fs::path rel = path.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") return std::nullopt;
  return rel;
}

class Collector {
 public:
  Collector(fs::path root, const TraceOptions& options, TraceFiles& out)
      : root_(std::move(root)), options_(options), out_(out) {}

  // `path` is absolute and lexically normal.
  void add(const fs::path& path, bool filter) {
    std::string s = path.string();
    if (seen_.count(s)) return;
    if (!inside(path, root_) || (filter && options_.code_only && !is_module_code(s)) ||
        !is_regular_file(s)) {
      ++out_.dropped;
      return;
    }
    seen_.insert(s);
    out_.files.push_back(std::move(s));
  }

  // A trace in the standalone output: entries resolve where they are.
  void add_trace(const std::string& trace_path) {
    auto entries = read_nft_trace(trace_path);
    if (!entries) {
      out_.problems.push_back(entries.error().message);
      return;
    }
    out_.traces.push_back(trace_path);
    for (const auto& entry : *entries) add(fs::path(entry), true);
  }

  // A trace in the build tree: entries are mapped from `src_root` to the standalone root.
  void add_build_trace(const std::string& trace_path, const fs::path& src_root) {
    auto entries = read_nft_trace(trace_path);
    if (!entries) {
      out_.problems.push_back(entries.error().message);
      return;
    }
    out_.traces.push_back(trace_path);
    for (const auto& entry : *entries) {
      auto rel = inside(fs::path(entry), src_root);
      if (!rel) {
        ++out_.dropped;
        continue;
      }
      add((root_ / *rel).lexically_normal(), true);
    }
  }

  void add_page(const fs::path& server_dir, const std::string& file) {
    if (!pages_done_.insert(file).second) return;
    fs::path entry = (server_dir / file).lexically_normal();
    add(entry, false);
    std::string trace = entry.string() + ".nft.json";
    if (is_regular_file(trace)) {
      add_trace(trace);
    } else {
      out_.problems.push_back(trace + ": no trace");
    }
  }

 private:
  fs::path root_;
  const TraceOptions& options_;
  TraceFiles& out_;
  std::unordered_set<std::string> seen_;
  std::unordered_set<std::string> pages_done_;
};

fs::path absolute_normal(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(dir), ec);
  if (ec) p = fs::path(dir);
  p = p.lexically_normal();
  if (p.has_filename() || p == p.root_path()) return p;
  return p.parent_path();  // "a/b/" -> "a/b"
}

}  // namespace

Expected<std::vector<std::string>> read_nft_trace(const std::string& trace_path) {
  auto text = read_text_file(trace_path, kMaxTraceBytes);
  if (!text) return text.error();
  auto files = json::string_array_member(*text, "files");
  if (!files) return Error{trace_path + ": " + files.error().message};
  fs::path dir = fs::path(trace_path).parent_path();
  std::vector<std::string> out;
  out.reserve(files->size());
  for (const auto& f : *files) {
    if (f.empty()) continue;
    out.push_back((dir / f).lexically_normal().string());
  }
  return out;
}

std::vector<PageRoute> read_page_routes(const std::string& app_dir) {
  fs::path next = fs::path(app_dir) / ".next";
  std::vector<PageRoute> out;
  auto read_map = [](const fs::path& path) -> std::vector<std::pair<std::string, std::string>> {
    auto text = read_text_file(path.string(), kMaxManifestBytes);
    if (!text) return {};
    auto map = json::string_map(*text);
    return map ? std::move(*map) : std::vector<std::pair<std::string, std::string>>{};
  };
  // App router: entry name -> route, entry name -> file.
  auto routes = read_map(next / "app-path-routes-manifest.json");
  auto files = read_map(next / "server/app-paths-manifest.json");
  for (const auto& [entry, route] : routes) {
    // Clang before 16 cannot capture a structured binding: capture by an init-capture.
    auto it = std::find_if(files.begin(), files.end(),
                           [&name = entry](const auto& f) { return f.first == name; });
    if (it != files.end()) out.push_back({route, it->second});
  }
  // Pages router: route -> file ("/_app", "/_document" too: every page render loads them).
  // Prerendered pages map to .html, which is no module.
  for (const auto& [route, file] : read_map(next / "server/pages-manifest.json")) {
    if (ends_with(file, ".js")) out.push_back({route, file});
  }
  return out;
}

std::optional<PageRoute> match_route(const std::vector<PageRoute>& routes,
                                     std::string_view warm_path) {
  warm_path = warm_path.substr(0, warm_path.find_first_of("?#"));
  auto path = split_segments(warm_path);
  const PageRoute* best = nullptr;
  int best_cost = 0;
  for (const auto& route : routes) {
    auto cost = match_cost(split_segments(route.route), path);
    if (cost && (!best || *cost < best_cost)) {
      best = &route;
      best_cost = *cost;
    }
  }
  if (!best) return std::nullopt;
  return *best;
}

TraceFiles trace_prewarm_files(const std::string& app_dir,
                               const std::vector<std::string>& warm_paths,
                               const TraceOptions& options) {
  TraceFiles out;
  fs::path app = absolute_normal(app_dir);
  auto required =
      read_text_file((app / ".next/required-server-files.json").string(), kMaxManifestBytes);
  std::string rel_app;  // empty when missing or not a string
  if (required) {
    if (auto dir = json::string_member(*required, "relativeAppDir")) rel_app = std::move(*dir);
  }
  // The standalone output mirrors the tracing root; the app sits rel_app below it.
  fs::path root = strip_suffix(app, rel_app).value_or(app);
  Collector collect(root, options, out);

  collect.add(app / "server.js", false);
  collect.add(app / "package.json", false);

  // The server's trace: copied next to the app, else in the build tree the standalone
  // directory was written into (<project>/<distDir>/standalone).
  fs::path copied = app / ".next/next-server.js.nft.json";
  fs::path build_trace = root.parent_path() / "next-server.js.nft.json";
  if (is_regular_file(copied.string())) {
    collect.add_trace(copied.string());
  } else if (root.filename() == "standalone" && is_regular_file(build_trace.string())) {
    fs::path project = root.parent_path().parent_path();
    if (auto src_root = strip_suffix(project, rel_app)) {
      collect.add_build_trace(build_trace.string(), *src_root);
    } else {
      out.problems.push_back(build_trace.string() + ": project is not below its tracing root");
    }
  } else {
    out.problems.push_back("no next-server.js.nft.json (it stays in the build tree; copy it to " +
                           copied.string() + ")");
  }

  if (required) {
    auto files = json::string_array_member(*required, "files");
    if (files) {
      for (const auto& f : *files) collect.add((app / f).lexically_normal(), false);
    } else {
      out.problems.push_back("required-server-files.json: " + files.error().message);
    }
  } else {
    out.problems.push_back(required.error().message);
  }

  fs::path server_dir = app / ".next/server";
  auto routes = read_page_routes(app.string());
  for (const auto& warm : warm_paths) {
    auto route = match_route(routes, warm);
    if (!route) {
      out.problems.push_back("no page for warm path " + warm);
      continue;
    }
    collect.add_page(server_dir, route->file);
  }
  if (options.all_entries) {
    for (const auto& route : routes) collect.add_page(server_dir, route.file);
  }
  return out;
}

}  // namespace knext
