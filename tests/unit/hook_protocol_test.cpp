#include <doctest/doctest.h>

#include <string>

#include "launcher/hook_protocol.hpp"

using knext::parse_hook_message;

TEST_CASE("hook messages: the fields the launcher acts on") {
  auto listening =
      parse_hook_message(R"({"type":"listening","host":"127.0.0.1","port":41234,"publicPort":8080,)"
                         R"("publicHost":"","protocol":"http","redirected":true})");
  REQUIRE(listening.has_value());
  CHECK(listening->type == "listening");
  CHECK(listening->host == "127.0.0.1");
  CHECK(listening->port == 41234);
  CHECK(listening->public_port == 8080);
  CHECK(listening->redirected);

  auto hello = parse_hook_message(R"({"type":"hello","pid":7,"node":"v24.21.0"})");
  REQUIRE(hello.has_value());
  CHECK(hello->node_version == "v24.21.0");

  auto error = parse_hook_message(R"({"type":"error","message":"listen: EADDRINUSE \"x\""})");
  REQUIRE(error.has_value());
  CHECK(error->message == "listen: EADDRINUSE \"x\"");

  auto flushed = parse_hook_message(R"({"type": "flushed", "ok": false, "error": "no API"})");
  REQUIRE(flushed.has_value());
  CHECK_FALSE(flushed->ok);
  CHECK(flushed->message == "no API");
}

TEST_CASE("hook messages: a key inside a string value is not a field") {
  auto m = parse_hook_message(R"({"type":"error","message":"\"port\":99"})");
  REQUIRE(m.has_value());
  CHECK(m->port == 0);
}

TEST_CASE("hook messages: garbage is ignored, not fatal") {
  for (auto line : {"", "open", "{}", "{\"type\":3}", "[1,2]", "{\"type\":\"x\"", "null"}) {
    CAPTURE(line);
    CHECK_FALSE(parse_hook_message(line).has_value());
  }
}

TEST_CASE("hook messages: a port or pid out of range reads as none, never wrapped") {
  auto wrapped = knext::parse_hook_message(
      R"({"type":"listening","host":"127.0.0.1","port":4294975376,"publicPort":-1,"pid":1e30})");
  REQUIRE(wrapped.has_value());
  CHECK(wrapped->port == 0);  // 2^32 + 8080 must not become 8080
  CHECK(wrapped->public_port == 0);
  CHECK(wrapped->pid == 0);
  auto fine = knext::parse_hook_message(R"({"type":"listening","port":65535,"publicPort":1})");
  REQUIRE(fine.has_value());
  CHECK(fine->port == 65535);
  CHECK(fine->public_port == 1);
}

TEST_CASE("hook messages: fields are read by name in any order; nested members are not fields") {
  auto flushed = parse_hook_message(
      R"({"postwarm":{"ok":true,"port":9},"ok":false,"type":"flushed","dir":""})");
  REQUIRE(flushed.has_value());
  CHECK(flushed->type == "flushed");
  CHECK_FALSE(flushed->ok);  // the top-level "ok", not the first one in the text
  CHECK(flushed->port == 0);
  auto hello = parse_hook_message(R"( {"node":"v24.21.0", "pid":7, "type":"hello"} )");
  REQUIRE(hello.has_value());
  CHECK(hello->pid == 7);
  CHECK(hello->node_version == "v24.21.0");
}

TEST_CASE("hook messages: a field of the wrong type reads as its default") {
  auto m = parse_hook_message(
      R"({"type":"listening","port":"8080","publicPort":8080.5,"redirected":1,"host":7})");
  REQUIRE(m.has_value());
  CHECK(m->port == 0);
  CHECK(m->public_port == 0);
  CHECK_FALSE(m->redirected);
  CHECK(m->host.empty());
  auto escaped = parse_hook_message(R"({"type":"error","message":"caf\u00e9 \"x\""})");
  REQUIRE(escaped.has_value());
  CHECK(escaped->message == "caf\xc3\xa9 \"x\"");
}

TEST_CASE("hook messages: a line over the size limit is not read") {
  std::string filler(knext::kMaxHookMessage, 'a');
  CHECK_FALSE(parse_hook_message(R"({"type":"error","message":")" + filler + "\"}").has_value());
  std::string fits = R"({"type":"error","message":")";
  fits += std::string(knext::kMaxHookMessage - fits.size() - 2, 'a') + "\"}";
  REQUIRE(fits.size() == knext::kMaxHookMessage);
  CHECK(parse_hook_message(fits).has_value());
  CHECK_FALSE(parse_hook_message(std::string(10000, '[')).has_value());  // nested too deeply
}

TEST_CASE("hook messages: next-preload's state, route count and time") {
  auto done = parse_hook_message(R"({"type":"next-preload","state":"done","pages":1001,"ms":714})");
  REQUIRE(done.has_value());
  CHECK(done->state == "done");
  CHECK(done->pages == 1001);
  CHECK(done->ms == 714);
  auto bad = parse_hook_message(R"({"type":"next-preload","state":7,"pages":-3,"ms":1e30})");
  REQUIRE(bad.has_value());
  CHECK(bad->state.empty());
  CHECK(bad->pages == 0);
  CHECK(bad->ms == 0);
}

TEST_CASE("hook protocol: traffic carries whole counts of at most 200 paths") {
  auto m = knext::parse_hook_message(
      R"({"type":"traffic","paths":{"/posts/hello":3,"/":1,"/neg":-1,"/half":1.5,"/s":"2"}})");
  REQUIRE(m);
  CHECK(m->type == "traffic");
  REQUIRE(m->paths.size() == 2);
  CHECK(m->paths[0] == std::pair<std::string, long long>{"/posts/hello", 3});
  CHECK(m->paths[1] == std::pair<std::string, long long>{"/", 1});

  std::string many = R"({"type":"traffic","paths":{)";
  for (int i = 0; i < 300; ++i) {
    many.append(i ? ",\"/p" : "\"/p").append(std::to_string(i)).append("\":1");
  }
  many += "}}";
  auto capped = knext::parse_hook_message(many);
  REQUIRE(capped);
  CHECK(capped->paths.size() == knext::kMaxTrafficPaths);
  // Other types never carry paths.
  auto other = knext::parse_hook_message(R"({"type":"idle","paths":{"/":1}})");
  REQUIRE(other);
  CHECK(other->paths.empty());
}
