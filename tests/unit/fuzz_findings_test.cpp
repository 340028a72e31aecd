// Inputs the fuzz targets in tests/fuzz found, each with the behaviour now expected.
#include <doctest/doctest.h>

#include <string>

#include "cachewarm/page_cache/manifest.hpp"
#include "cachewarm/page_cache/mapped_pages_file.hpp"

// manifest-fuzz: a path with a CR inside was read but could not be written back.
TEST_CASE("fuzz finding: a manifest path with a CR inside reads, writes and reads back the same") {
  auto m = knext::parse_manifest("# knext-prewarm-manifest v1\n/app/node_modules/a\rb/x.js\n");
  REQUIRE(m.ok());
  REQUIRE(m->paths.size() == 1);
  CHECK(m->paths[0] == "/app/node_modules/a\rb/x.js");
  auto text = knext::format_manifest(*m);
  REQUIRE(text.ok());
  auto again = knext::parse_manifest(*text);
  REQUIRE(again.ok());
  CHECK(again->paths == m->paths);
}

// mapped_pages-fuzz: a NUL in a file line's path was accepted; opened as a C string it names
// another file ("/\0usr/local/bin/node" is "/").
TEST_CASE("fuzz finding: a pages file whose path holds a NUL is refused, naming the line") {
  std::string text = "# knext-prewarm-pages v1\nfile 10 20 /";
  text += std::string(1, '\0') + "usr/local/bin/node\n0 4096\n";
  auto files = knext::parse_mapped_pages(text);
  REQUIRE_FALSE(files.ok());
  CHECK(files.error().message.find("line 2") != std::string::npos);
  CHECK(files.error().message.find("NUL") != std::string::npos);
}

TEST_CASE(
    "fuzz finding: a pages file path with a CR inside round-trips; a trailing CR is refused") {
  auto files =
      knext::parse_mapped_pages("# knext-prewarm-pages v1\nfile 10 20 /lib/a\rb.so\n0 4096\n");
  REQUIRE(files.ok());
  REQUIRE(files->size() == 1);
  auto text = knext::format_mapped_pages(*files);
  REQUIRE(text.ok());
  auto again = knext::parse_mapped_pages(*text);
  REQUIRE(again.ok());
  CHECK((*again)[0].path == "/lib/a\rb.so");
  (*files)[0].path = "/lib/a.so\r";
  CHECK_FALSE(knext::format_mapped_pages(*files).ok());
}

// manifest-fuzz: "/a\r\r\n" read as "/a\r", which no writer can record (it would read back "/a").
TEST_CASE("fuzz finding: a manifest or pages path ending in CR is refused, naming the line") {
  auto m = knext::parse_manifest("# knext-prewarm-manifest v1\r\n/ok.js\r\n/app/x.js\r\r\n");
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().message.find("line 3") != std::string::npos);
  auto files = knext::parse_mapped_pages("# knext-prewarm-pages v1\nfile 1 2 /lib/a.so\r\r\n");
  REQUIRE_FALSE(files.ok());
  CHECK(files.error().message.find("line 2") != std::string::npos);
}
