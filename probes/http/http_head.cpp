#include "probes/http/http_head.hpp"

#include <algorithm>
#include <optional>

namespace knext {
namespace {

constexpr std::string_view kNotRequestLine = "request line is not METHOD SP TARGET SP HTTP/1.x";

// RFC 9110 token characters (methods and field names).
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
bool is_vchar(unsigned char c) {
  return c > 0x20 && c < 0x7f;
}
// Field values: visible characters, obs-text, SP and HTAB; no other control characters.
bool is_field_value_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}
template <class Pred>
bool all_of(std::string_view s, Pred pred) {
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return pred(static_cast<unsigned char>(c)); });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
           };
           return lower(x) == lower(y);
         });
}
bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

HeadParseResult bad(std::string reason, int status = 400) {
  HeadParseResult r;
  r.kind = HeadParseResult::Kind::kBad;
  r.reason = std::move(reason);
  r.status = status;
  return r;
}

// Checks a request line, or the part of one received so far (complete = false: only what can
// no longer become valid is an error). Fills `head` when the line is complete and valid.
std::optional<std::string> request_line_error(std::string_view line, bool complete,
                                              HttpRequestHead& head) {
  if (!complete && !line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t sp1 = line.find(' ');
  std::string_view method = line.substr(0, sp1);
  if (!all_of(method, is_tchar)) return std::string(kNotRequestLine) + " (bad method)";
  if (sp1 == std::string_view::npos) {
    if (complete) return std::string(kNotRequestLine);
    return std::nullopt;
  }
  if (method.empty()) return std::string(kNotRequestLine) + " (no method)";

  std::string_view rest = line.substr(sp1 + 1);
  std::size_t sp2 = rest.find(' ');
  std::string_view target = rest.substr(0, sp2);
  if (!all_of(target, is_vchar)) return std::string(kNotRequestLine) + " (bad target)";
  if (sp2 == std::string_view::npos) {
    if (complete) return std::string(kNotRequestLine);
    return std::nullopt;
  }
  if (target.empty()) return std::string(kNotRequestLine) + " (no target)";

  std::string_view version = rest.substr(sp2 + 1);
  constexpr std::string_view kPrefix = "HTTP/1.";
  std::size_t n = std::min(version.size(), kPrefix.size());
  bool version_ok =
      version.substr(0, n) == kPrefix.substr(0, n) && version.size() <= kPrefix.size() + 1 &&
      (version.size() <= kPrefix.size() || (version.back() >= '0' && version.back() <= '9'));
  if (!version_ok || (complete && version.size() != kPrefix.size() + 1)) {
    return std::string(kNotRequestLine) + " (unsupported version)";
  }
  if (!complete) return std::nullopt;

  // The target: origin-form "/path?query", absolute-form "http://host/path?query", or "*".
  std::string_view path = target;
  if (target == "*") {
    if (method != "OPTIONS") return std::string("target * is only allowed with OPTIONS");
  } else if (istarts_with(target, "http://") || istarts_with(target, "https://")) {
    std::string_view after_scheme = target.substr(target.find("://") + 3);
    std::size_t path_start = after_scheme.find_first_of("/?");
    if (path_start == 0) return std::string("absolute target without a host");
    path =
        path_start == std::string_view::npos ? std::string_view() : after_scheme.substr(path_start);
  } else if (target.front() != '/') {
    return std::string("target must be a path, an absolute URL or *");
  }
  if (path.find('#') != std::string_view::npos) return std::string("target has a fragment");
  std::size_t q = path.find('?');
  head.target = std::string(path.substr(0, q));
  if (head.target.empty()) head.target = "/";
  head.query = q == std::string_view::npos ? std::string() : std::string(path.substr(q + 1));
  head.method = std::string(method);
  head.version = std::string(version);
  return std::nullopt;
}

// One header field line (without its line end).
std::optional<std::string> add_field(std::string_view line, HttpRequestHead& head) {
  if (line.front() == ' ' || line.front() == '\t') return std::string("folded header line");
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return std::string("header line without ':'");
  std::string_view name = line.substr(0, colon);
  if (name.empty() || !all_of(name, is_tchar)) return std::string("bad header name");
  std::string_view value = line.substr(colon + 1);
  if (!all_of(value, is_field_value_char)) return std::string("control character in header");
  head.headers.push_back({std::string(name), std::string(trim(value))});
  return std::nullopt;
}

}  // namespace

const HttpHeaderField* HttpRequestHead::find_header(std::string_view name) const {
  for (const auto& field : headers) {
    if (iequals(field.name, name)) return &field;
  }
  return nullptr;
}

HeadParseResult parse_request_head(std::string_view buffered) {
  // Only the first kMaxRequestHead bytes may hold the head, its final line end included.
  std::string_view window = buffered.substr(0, kMaxRequestHead);
  bool more_may_come = buffered.size() < kMaxRequestHead;
  auto too_large = [] {
    return bad("request head larger than " + std::to_string(kMaxRequestHead) + " bytes", 431);
  };

  HeadParseResult result;
  std::size_t pos = 0;
  bool have_request_line = false;
  while (true) {
    std::size_t lf = window.find('\n', pos);
    if (lf == std::string_view::npos) {
      if (!have_request_line) {
        if (auto err = request_line_error(window.substr(pos), false, result.head)) return bad(*err);
      }
      return more_may_come ? result : too_large();
    }
    std::string_view line = window.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = lf + 1;
    if (!have_request_line) {
      if (line.empty()) continue;  // RFC 9112 2.2: ignore empty lines before the request line
      if (auto err = request_line_error(line, true, result.head)) return bad(*err);
      have_request_line = true;
      continue;
    }
    if (line.empty()) break;
    if (auto err = add_field(line, result.head)) return bad(*err);
  }
  result.kind = HeadParseResult::Kind::kOk;
  result.head.head_length = pos;
  return result;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

std::string format_reply(const HttpReply& reply, bool head_only, std::string_view extra_headers) {
  std::string out;
  out.reserve(128 + extra_headers.size() + (head_only ? 0 : reply.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(reply.status);
  out += ' ';
  out += reason_phrase(reply.status);
  out += "\r\n";
  if (!reply.content_type.empty()) {
    out += "Content-Type: ";
    out += reply.content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(reply.body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head_only) out += reply.body;
  return out;
}

}  // namespace knext
