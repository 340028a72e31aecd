#pragma once
// A table-driven command line: each flag is one row (name, help, what is allowed, a setter), also
// read from KNEXT_<NAME> when not given; flags win over the environment. knext-launch and
// knext-bench each keep their own table.
#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.hpp"
#include "common/value_parsers.hpp"

namespace knext {

// Looks up an environment variable; injectable so tests need not touch the real environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

template <class Target>
struct FlagSpec {
  const char* name;
  const char* help;
  const char* allowed;                           // what an error message says is allowed
  bool is_switch;                                // may be given without a value
  bool (*set)(Target&, std::string_view value);  // false: the value is not an allowed one
  bool repeatable = false;                       // may be given many times; the setter appends
  const char* env_name = nullptr;  // default KNEXT_<NAME>; a repeatable one is comma-separated
};

// The program as its --help presents it.
struct CliProgram {
  const char* name;
  const char* description;
  const char* positional_help;
};

// A flag row without its setter.
struct FlagRow {
  const char* name;
  const char* help;
  const char* allowed;
  bool is_switch;
  bool repeatable;
  const char* env_name;
};

struct ParsedFlags {
  bool help = false;
  bool version = false;
  std::vector<std::string> positional;  // before and after --, in order
};

// Errors are one line naming the flag (or variable) and what is allowed. With --help or
// --version nothing else is applied.
Expected<ParsedFlags> parse_flag_rows(const CliProgram& program, const std::vector<FlagRow>& rows,
                                      const std::vector<std::string>& args, const EnvLookup& env,
                                      const std::function<bool(size_t row, std::string_view)>& set);
std::string flag_rows_help(const CliProgram& program, const std::vector<FlagRow>& rows);

// The command given after the flags, or the standalone build's `node server.js`.
std::vector<std::string> command_or_default(const std::vector<std::string>& command);
// A command naming an empty program is refused in one line; no command is fine.
Status check_command(const std::vector<std::string>& command);

template <class Target>
std::vector<FlagRow> rows_of(const std::vector<FlagSpec<Target>>& specs) {
  std::vector<FlagRow> rows;
  for (const auto& s : specs) {
    rows.push_back({s.name, s.help, s.allowed, s.is_switch, s.repeatable, s.env_name});
  }
  return rows;
}

template <class Target>
Expected<ParsedFlags> parse_flags(const CliProgram& program,
                                  const std::vector<FlagSpec<Target>>& specs, Target& out,
                                  const std::vector<std::string>& args, const EnvLookup& env) {
  return parse_flag_rows(
      program, rows_of(specs), args, env,
      [&](size_t row, std::string_view value) { return specs[row].set(out, value); });
}

template <class Target>
std::string flags_help(const CliProgram& program, const std::vector<FlagSpec<Target>>& specs) {
  return flag_rows_help(program, rows_of(specs));
}

// Setters for the usual kinds of value, as table rows name them: set_int<&Config::runs, 1, 100>.
template <class Member>
struct member_owner;
template <class Owner, class Value>
struct member_owner<Value Owner::*> {
  using type = Owner;
};
template <auto Member>
using owner_of = typename member_owner<decltype(Member)>::type;

template <auto Member>
bool set_duration(owner_of<Member>& c, std::string_view v) {
  auto d = parse_duration(v);
  if (!d) return false;
  c.*Member = *d;
  return true;
}

// A duration of zero would make the setting act at once (--warm-timeout 0 stops every app).
template <auto Member>
bool set_positive_duration(owner_of<Member>& c, std::string_view v) {
  auto d = parse_duration(v);
  if (!d || d->count() <= 0) return false;
  c.*Member = *d;
  return true;
}

template <auto Member>
bool set_bool(owner_of<Member>& c, std::string_view v) {
  auto b = parse_bool(v);
  if (!b) return false;
  c.*Member = *b;
  return true;
}

template <auto Member, int Min, int Max>
bool set_int(owner_of<Member>& c, std::string_view v) {
  auto n = parse_int(v, Min, Max);
  if (!n) return false;
  c.*Member = *n;
  return true;
}

template <auto Member>
bool set_path(owner_of<Member>& c, std::string_view v) {
  if (v.empty()) return false;
  c.*Member = std::string(v);
  return true;
}

template <class Enum, size_t N>
bool set_enum(Enum& out, std::string_view v,
              const std::array<std::pair<std::string_view, Enum>, N>& names) {
  for (auto [name, value] : names) {
    if (v == name) {
      out = value;
      return true;
    }
  }
  return false;
}

}  // namespace knext
