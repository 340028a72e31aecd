#include "probes/warm/app_urls.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>

namespace knext {
namespace {

namespace json = boost::json;

Error bad(const std::string& file, const std::string& what) {
  return Error{file + ": " + what, EINVAL};
}

// A locale names one path segment: no '/', nothing a request line cannot carry.
bool plain_segment(std::string_view s) {
  constexpr size_t kMaxLocale = 64;
  if (s.empty() || s.size() > kMaxLocale || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

Status read_base_path(const json::object& doc, const std::string& name, AppUrls& out) {
  const json::value* base = doc.if_contains("basePath");
  if (!base || base->is_null()) return ok_status();
  if (!base->is_string()) return bad(name, "\"basePath\" is not a string");
  std::string path(base->as_string());
  if (!path.empty() && (path.front() != '/' || path.back() == '/')) {
    return bad(name, "\"basePath\" \"" + path + "\" is not empty nor /name without a trailing /");
  }
  out.base_path = std::move(path);
  return ok_status();
}

Status read_i18n(const json::object& doc, const std::string& name, AppUrls& out) {
  constexpr size_t kMaxLocales = 1000;
  const json::value* i18n = doc.if_contains("i18n");
  if (!i18n || i18n->is_null()) return ok_status();
  if (!i18n->is_object()) return bad(name, "\"i18n\" is not an object");
  const json::value* locales = i18n->as_object().if_contains("locales");
  const json::value* fallback = i18n->as_object().if_contains("defaultLocale");
  if (!locales || !locales->is_array() || locales->as_array().size() > kMaxLocales) {
    return bad(name, "\"i18n.locales\" is not an array of at most 1000 locales");
  }
  if (!fallback || !fallback->is_string() || !plain_segment(fallback->as_string())) {
    return bad(name, "\"i18n.defaultLocale\" is not a locale name");
  }
  for (const auto& v : locales->as_array()) {
    if (!v.is_string() || !plain_segment(v.as_string())) {
      return bad(name, "\"i18n.locales\" holds something that is not a locale name");
    }
    out.locales.emplace_back(v.as_string());
  }
  out.default_locale = std::string(fallback->as_string());
  if (std::find(out.locales.begin(), out.locales.end(), out.default_locale) == out.locales.end()) {
    return bad(name, "\"i18n.defaultLocale\" \"" + out.default_locale + "\" is not in \"locales\"");
  }
  return ok_status();
}

Status read_trailing_slash(const json::object& doc, const std::string& name, AppUrls& out) {
  const json::value* config = doc.if_contains("config");
  if (!config || config->is_null()) return ok_status();
  if (!config->is_object()) return bad(name, "\"config\" is not an object");
  const json::value* slash = config->as_object().if_contains("trailingSlash");
  if (!slash || slash->is_null()) return ok_status();
  if (!slash->is_bool()) return bad(name, "\"config.trailingSlash\" is not true or false");
  out.trailing_slash = slash->as_bool();
  return ok_status();
}

}  // namespace

Expected<AppUrls> app_urls_from(const json::value& routes_manifest, const std::string& routes_name,
                                const json::value& server_files, const std::string& files_name) {
  AppUrls urls;
  if (const json::object* doc = routes_manifest.if_object()) {
    if (auto st = read_base_path(*doc, routes_name, urls); !st.ok()) return st.error();
    if (auto st = read_i18n(*doc, routes_name, urls); !st.ok()) return st.error();
  }
  if (const json::object* doc = server_files.if_object()) {
    if (auto st = read_trailing_slash(*doc, files_name, urls); !st.ok()) return st.error();
  }
  return urls;
}

std::string public_path(const AppUrls& urls, std::string_view route) {
  std::string out = urls.base_path;
  if (route != "/" || out.empty()) out += route;
  if (urls.trailing_slash && out != "/") {
    std::string_view last = std::string_view(out).substr(out.rfind('/') + 1);
    if (last.find('.') == std::string_view::npos) out += '/';
  }
  return out;
}

std::optional<std::string> default_locale_route(const AppUrls& urls, std::string_view path) {
  if (urls.locales.empty() || path.size() < 2 || path.front() != '/') return std::string(path);
  size_t end = path.find('/', 1);
  std::string_view first = path.substr(1, end == std::string_view::npos ? end : end - 1);
  if (std::find(urls.locales.begin(), urls.locales.end(), first) == urls.locales.end()) {
    return std::string(path);
  }
  if (first != urls.default_locale) return std::nullopt;
  return end == std::string_view::npos ? std::string("/") : std::string(path.substr(end));
}

}  // namespace knext
