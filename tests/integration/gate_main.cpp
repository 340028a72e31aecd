#include <sys/prctl.h>

#include "common/boost_process.hpp"
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

int main(int argc, char** argv) {
  // A launcher that dies before its children (a crash, a SIGKILL on timeout) leaves node and its
  // warm-up worker behind: as a subreaper this process inherits them, and gate_test.cpp kills
  // and reaps them after each test instead of leaking servers on the tests' ports.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  doctest::Context context(argc, argv);
  return context.run();
}
