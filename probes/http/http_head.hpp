#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

// HTTP/1.x message heads: an incremental request-head parser and the response-head writer,
// shared by the admin server and the proxy gate. No I/O here.
namespace knext {

// A request head (request line, fields and the blank line) longer than this is refused.
inline constexpr std::size_t kMaxRequestHead = 8 * 1024;

struct HttpHeaderField {
  std::string name;   // as sent
  std::string value;  // surrounding spaces and tabs trimmed
};

struct HttpRequestHead {
  std::string method;   // e.g. "GET"
  std::string target;   // the path, without query: "/metrics" ("*" for OPTIONS *)
  std::string query;    // after '?', without it; empty when there is none
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"
  std::vector<HttpHeaderField> headers;
  std::size_t head_length = 0;  // bytes of the head, blank line included; the body starts here

  // The first field with this name (case-insensitive), or nullptr.
  const HttpHeaderField* find_header(std::string_view name) const;
};

struct HeadParseResult {
  enum class Kind { kIncomplete, kBad, kOk };
  Kind kind = Kind::kIncomplete;
  std::string reason;    // kBad: why, for the 4xx body
  int status = 0;        // kBad: the status to answer, 400 or 431 (head too large)
  HttpRequestHead head;  // kOk

  bool incomplete() const { return kind == Kind::kIncomplete; }
  bool bad() const { return kind == Kind::kBad; }
  bool ok() const { return kind == Kind::kOk; }
};

// Parses the bytes received so far. kIncomplete: read more and call again with everything
// buffered. kBad as soon as the bytes can no longer become a valid head (a malformed request
// line is reported before its end arrives; more than kMaxRequestHead bytes without the blank
// line is 431). Accepts "METHOD SP TARGET SP HTTP/1.x" with origin-form, absolute-form or "*"
// targets, CRLF or bare LF line ends and leading empty lines.
HeadParseResult parse_request_head(std::string_view buffered);

// What a handler answers; the server adds the rest of the head.
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
};

// "OK", "Not Found", ...; "Unknown" for codes not listed.
std::string_view reason_phrase(int status);

// "HTTP/1.1 <status> <reason>", Content-Type, Content-Length, Connection: close, the lines in
// extra_headers (each ending in CRLF), a blank line, then the body unless head_only (HEAD).
std::string format_reply(const HttpReply& reply, bool head_only,
                         std::string_view extra_headers = {});

}  // namespace knext
