#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "common/log.hpp"

int main(int argc, char** argv) {
  // Code under test logs its phases; the test report should not drown in them.
  knext::log::init(knext::LogFormat::kText, knext::LogLevel::kOff);
  doctest::Context context(argc, argv);
  return context.run();
}
