#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cerrno>

#include "common/exit_status.hpp"

TEST_CASE("exit codes pass through, signals become 128+N") {
  for (int code : {0, 1, 2, 32, 64, 127, 254, 255}) {
    CHECK(knext::exit_code_from_wait_status(W_EXITCODE(code, 0)) == code);
  }
  CHECK(knext::exit_code_from_wait_status(W_EXITCODE(0, SIGTERM)) == 143);
  CHECK(knext::exit_code_from_wait_status(W_EXITCODE(0, SIGKILL)) == 137);
  CHECK(knext::exit_code_from_wait_status(W_EXITCODE(0, SIGQUIT) | WCOREFLAG) == 131);
  CHECK(knext::describe_wait_status(W_EXITCODE(0, SIGKILL)).find("KILL") != std::string::npos);
}

TEST_CASE("spawn failures map to 127 (not found) and 126 (not executable)") {
  CHECK(knext::exit_code_from_spawn_errno(ENOENT) == 127);
  CHECK(knext::exit_code_from_spawn_errno(ENOTDIR) == 127);
  CHECK(knext::exit_code_from_spawn_errno(EACCES) == 126);
  CHECK(knext::exit_code_from_spawn_errno(ENOEXEC) == 126);
}
