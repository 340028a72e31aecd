#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>

#include "common/log.hpp"

int main(int argc, char** argv) {
  // As in the launcher (supervisor.cpp): a write to a socket the peer reset must not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  knext::log::init(knext::LogFormat::kText, knext::LogLevel::kWarn);  // no phase lines
  doctest::Context context(argc, argv);
  return context.run();
}
