#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>

#include "common/fd.hpp"
#include "probes/warm/command_lines.hpp"

namespace {
struct Pipe {
  knext::Fd read_end, write_end;
  Pipe() {
    int ends[2];
    REQUIRE(pipe(ends) == 0);
    read_end.reset(ends[0]);
    write_end.reset(ends[1]);
  }
  void write_text(const std::string& text) const {
    REQUIRE(write(write_end.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  }
};
}  // namespace

TEST_CASE("command lines: whole lines across writes; a last line without a newline is dropped") {
  Pipe p;
  knext::CommandLines lines(p.read_end.get());
  p.write_text("go 127.0.0.1 3000 ");
  p.write_text("5000 8 42\nbusy\nid");
  CHECK(lines.next() == std::optional<std::string>("go 127.0.0.1 3000 5000 8 42"));
  CHECK(lines.next() == std::optional<std::string>("busy"));
  p.write_text("le\nbg 0");
  CHECK(lines.next() == std::optional<std::string>("idle"));
  p.write_end.reset();
  CHECK_FALSE(lines.next().has_value());
  CHECK_FALSE(lines.next().has_value());
}

// The warm-up worker stops its command reader before the state the reader writes goes away; the
// launcher keeps its end open (and writes busy/idle) until the worker has exited.
TEST_CASE("command lines: stop() ends a next() blocked in another thread on an open pipe") {
  Pipe p;
  knext::CommandLines lines(p.read_end.get());
  auto blocked = std::async(std::launch::async, [&] { return lines.next(); });
  CHECK(blocked.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  lines.stop();
  bool woke = blocked.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  CHECK(woke);
  if (!woke) p.write_end.reset();  // let the reader end so the test fails instead of hanging
  CHECK_FALSE(blocked.get().has_value());
  p.write_text("busy\n");
  CHECK_FALSE(lines.next().has_value());
}
