#include "probes/warm/warm_record.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>

#include "cachewarm/text_file.hpp"

namespace knext {
namespace json = boost::json;
namespace {

constexpr size_t kMaxRecordBytes = 4 << 20;
constexpr int kFormat = 1;

bool is_path(const json::value* v) {
  return v != nullptr && v->is_string() && !v->as_string().empty() && v->as_string().front() == '/';
}

}  // namespace

const WarmRecordPath* WarmRecord::find(std::string_view path) const {
  for (const auto& p : paths) {
    if (p.path == path) return &p;
  }
  return nullptr;
}

std::string warm_record_path_for(const std::string& app_dir) {
  return app_dir + "/.next/knext-warm-record.json";
}

std::string format_warm_record(const WarmRecord& record) {
  json::object root;
  root["knext_warm_record"] = kFormat;
  root["build_id"] = record.build_id;
  json::array paths;
  for (const auto& p : record.paths) {
    paths.push_back(json::object{{"path", p.path},
                                 {"steady_ms", p.steady_ms},
                                 {"repeats", p.repeats},
                                 {"critical", p.critical},
                                 {"steady_cpu_ms", p.steady_cpu_ms}});
  }
  root["paths"] = std::move(paths);
  json::array routes;
  for (const auto& r : record.routes) routes.push_back(json::string(r));
  root["routes"] = std::move(routes);
  return json::serialize(root) + "\n";
}

Expected<WarmRecord> parse_warm_record(std::string_view text) {
  json::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return Error{"not JSON: " + ec.message()};
  const json::object* obj = root.if_object();
  if (obj == nullptr) return Error{"not a JSON object"};
  const json::value* format = obj->if_contains("knext_warm_record");
  if (format == nullptr || !format->is_int64() || format->as_int64() != kFormat) {
    return Error{"not a knext warm record of format 1"};
  }
  WarmRecord record;
  const json::value* build = obj->if_contains("build_id");
  if (build == nullptr || !build->is_string()) return Error{"build_id is not a string"};
  record.build_id = std::string(build->as_string());
  const json::value* paths = obj->if_contains("paths");
  if (paths == nullptr || !paths->is_array()) return Error{"paths is not an array"};
  for (const auto& item : paths->as_array()) {
    const json::object* p = item.if_object();
    if (p == nullptr || !is_path(p->if_contains("path"))) {
      return Error{"a paths entry has no path starting with /"};
    }
    WarmRecordPath out;
    out.path = std::string(p->at("path").as_string());
    const json::value* steady = p->if_contains("steady_ms");
    if (steady == nullptr || !steady->is_number() || steady->to_number<double>() < 0) {
      return Error{"steady_ms of " + out.path + " is not a number of at least 0"};
    }
    out.steady_ms = steady->to_number<double>();
    if (const json::value* r = p->if_contains("repeats"); r != nullptr && r->is_int64()) {
      out.repeats = static_cast<int>(r->as_int64());
    }
    if (const json::value* c = p->if_contains("critical"); c != nullptr && c->is_bool()) {
      out.critical = c->as_bool();
    }
    if (const json::value* c = p->if_contains("steady_cpu_ms"); c != nullptr && c->is_number()) {
      out.steady_cpu_ms = std::max(0.0, c->to_number<double>());
    }
    record.paths.push_back(std::move(out));
  }
  if (const json::value* routes = obj->if_contains("routes"); routes != nullptr) {
    if (!routes->is_array()) return Error{"routes is not an array"};
    for (const auto& r : routes->as_array()) {
      if (!is_path(&r)) return Error{"a route does not start with /"};
      record.routes.emplace_back(r.as_string());
    }
  }
  return record;
}

Expected<std::optional<WarmRecord>> load_warm_record(const std::string& app_dir,
                                                     const std::string& build_id) {
  std::string path = warm_record_path_for(app_dir);
  auto text = read_text_file(path, kMaxRecordBytes);
  if (!text) {
    if (text.error().code == ENOENT) return std::optional<WarmRecord>();
    return Error{text.error().message};
  }
  auto record = parse_warm_record(*text);
  if (!record) return Error{path + ": " + record.error().message};
  if (record->build_id != build_id) {
    return Error{path + " is of build '" + record->build_id + "', this is build '" + build_id +
                 "'"};
  }
  return std::optional<WarmRecord>(std::move(*record));
}

}  // namespace knext
