#include <doctest/doctest.h>

#include <string>

#include "probes/http/http_head.hpp"

using knext::HeadParseResult;
using knext::parse_request_head;

namespace {

std::string with_head_size(std::size_t size) {
  // "GET / HTTP/1.1\r\nX: <filler>\r\n\r\n" padded to exactly `size` bytes.
  std::string start = "GET / HTTP/1.1\r\nX: ";
  std::string end = "\r\n\r\n";
  return start + std::string(size - start.size() - end.size(), 'a') + end;
}

}  // namespace

TEST_CASE("a complete GET head parses into method, path, query, version and fields") {
  std::string head =
      "GET /metrics?x=1&y=2 HTTP/1.1\r\nHost: localhost:9901\r\nUser-Agent:  kube-probe/1.31 "
      "\r\n\r\n";
  auto r = parse_request_head(head + "body bytes");
  REQUIRE(r.ok());
  CHECK(r.head.method == "GET");
  CHECK(r.head.target == "/metrics");
  CHECK(r.head.query == "x=1&y=2");
  CHECK(r.head.version == "HTTP/1.1");
  CHECK(r.head.head_length == head.size());
  REQUIRE(r.head.headers.size() == 2);
  CHECK(r.head.headers[0].name == "Host");
  CHECK(r.head.headers[0].value == "localhost:9901");
  CHECK(r.head.headers[1].value == "kube-probe/1.31");
  REQUIRE(r.head.find_header("user-agent") != nullptr);
  CHECK(r.head.find_header("USER-AGENT")->value == "kube-probe/1.31");
  CHECK(r.head.find_header("Accept") == nullptr);
}

TEST_CASE("every proper prefix of a valid head is incomplete, never bad") {
  std::string head = "HEAD /readyz HTTP/1.0\r\nAccept: */*\r\n\r\n";
  for (std::size_t n = 0; n < head.size(); ++n) {
    auto r = parse_request_head(std::string_view(head).substr(0, n));
    INFO("prefix length " << n);
    CHECK(r.incomplete());
  }
  auto r = parse_request_head(head);
  REQUIRE(r.ok());
  CHECK(r.head.method == "HEAD");
  CHECK(r.head.version == "HTTP/1.0");
  CHECK(r.head.head_length == head.size());
}

TEST_CASE("bare LF line ends and leading empty lines are accepted") {
  auto lf = parse_request_head("GET /healthz HTTP/1.1\nHost: x\n\n");
  REQUIRE(lf.ok());
  CHECK(lf.head.target == "/healthz");
  CHECK(lf.head.head_length == 31);
  auto leading = parse_request_head("\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  REQUIRE(leading.ok());
  CHECK(leading.head.target == "/");
  CHECK(leading.head.head_length == 22);
}

TEST_CASE("absolute-form targets yield their path; * only with OPTIONS") {
  auto abs = parse_request_head("GET http://127.0.0.1:9901/startup?v=1 HTTP/1.1\r\n\r\n");
  REQUIRE(abs.ok());
  CHECK(abs.head.target == "/startup");
  CHECK(abs.head.query == "v=1");
  auto bare_host = parse_request_head("GET HTTPS://example.com HTTP/1.1\r\n\r\n");
  REQUIRE(bare_host.ok());
  CHECK(bare_host.head.target == "/");
  CHECK(parse_request_head("GET http:///x HTTP/1.1\r\n\r\n").bad());

  auto star = parse_request_head("OPTIONS * HTTP/1.1\r\n\r\n");
  REQUIRE(star.ok());
  CHECK(star.head.target == "*");
  CHECK(parse_request_head("GET * HTTP/1.1\r\n\r\n").bad());
}

TEST_CASE("request lines that are not METHOD SP TARGET SP HTTP/1.x are bad (400)") {
  for (std::string line :
       {"GARBAGE", "GET /", "GET / HTTP/2.0", "GET / HTTP/1.1 extra", "GET  / HTTP/1.1",
        "GET / HTTP/1.x", "GET / HTTP/1.10", "GET / http/1.1", " GET / HTTP/1.1x",
        "GET foo HTTP/1.1", "GET /a#frag HTTP/1.1", "G(T / HTTP/1.1", "GET /\x01 HTTP/1.1",
        "CONNECT host:443 HTTP/1.1", "GET / HTTP/1.1\r"}) {
    INFO("request line: " << line);
    auto r = parse_request_head(line + "\r\n\r\n");
    REQUIRE(r.bad());
    CHECK(r.status == 400);
    CHECK_FALSE(r.reason.empty());
  }
}

TEST_CASE("a request line that cannot become valid is bad before it ends") {
  CHECK(parse_request_head("\x16\x03\x01\x02").bad());  // a TLS ClientHello
  CHECK(parse_request_head("GE\x01").bad());
  CHECK(parse_request_head("GET /x\x7f").bad());
  CHECK(parse_request_head("GET / HTTP/2").bad());
  CHECK(parse_request_head("GET / HTTP/1.1x").bad());
  CHECK(parse_request_head("SSH-2.0-OpenSSH").incomplete());  // still a valid method so far
  CHECK(parse_request_head("SSH-2.0-OpenSSH_9.2\r\n").bad());
}

TEST_CASE("malformed header lines are bad") {
  for (std::string field : {"NoColon", "Host : x", ": empty-name", " folded: x", "\tfolded: x",
                            "X: a\x01b", "X: a\rb", "B@d: x"}) {
    INFO("field line: " << field);
    auto r = parse_request_head("GET / HTTP/1.1\r\n" + field + "\r\n\r\n");
    REQUIRE(r.bad());
    CHECK(r.status == 400);
  }
  // obs-fold (RFC 9112 5.2) is refused with its own reason.
  CHECK(parse_request_head("GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n").reason ==
        "folded header line");
  auto ok = parse_request_head("GET / HTTP/1.1\r\nX-Empty:\r\nX-Utf8: caf\xc3\xa9\r\n\r\n");
  REQUIRE(ok.ok());
  CHECK(ok.head.headers[0].value.empty());
  CHECK(ok.head.headers[1].value == "caf\xc3\xa9");
}

TEST_CASE("methods are tokens: the parser accepts any, the server decides") {
  auto r = parse_request_head("get / HTTP/1.1\r\n\r\n");
  REQUIRE(r.ok());
  CHECK(r.head.method == "get");
  CHECK(parse_request_head("POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").ok());
}

TEST_CASE("the head may be 8 KiB, not a byte more (431)") {
  auto exact = with_head_size(knext::kMaxRequestHead);
  REQUIRE(exact.size() == 8192);
  auto r = parse_request_head(exact);
  REQUIRE(r.ok());
  CHECK(r.head.head_length == 8192);

  auto over = parse_request_head(with_head_size(knext::kMaxRequestHead + 1));
  REQUIRE(over.bad());
  CHECK(over.status == 431);

  std::string unterminated = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'a');
  CHECK(parse_request_head(unterminated.substr(0, 8191)).incomplete());
  auto full = parse_request_head(unterminated.substr(0, 8192));
  REQUIRE(full.bad());
  CHECK(full.status == 431);
  CHECK(parse_request_head(unterminated).status == 431);
  CHECK(parse_request_head(std::string(8192, '\n')).status == 431);  // empty lines count too
}

TEST_CASE("format_reply writes status line, length, Connection: close and the body") {
  knext::HttpReply reply{503, "text/plain; charset=utf-8", "not ready\n"};
  CHECK(knext::format_reply(reply, false) ==
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 10\r\nConnection: close\r\n\r\nnot ready\n");
  CHECK(knext::format_reply(reply, true) ==
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 10\r\nConnection: close\r\n\r\n");
  knext::HttpReply no_type{405, "", ""};
  CHECK(knext::format_reply(no_type, false, "Allow: GET, HEAD\r\n") ==
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n"
        "Allow: GET, HEAD\r\n\r\n");
}

TEST_CASE("reason phrases") {
  CHECK(knext::reason_phrase(200) == "OK");
  CHECK(knext::reason_phrase(404) == "Not Found");
  CHECK(knext::reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(knext::reason_phrase(299) == "Unknown");
}
