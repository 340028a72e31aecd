#include "common/cli_flags.hpp"

#include <fmt/format.h>

#include <cxxopts.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace knext {
namespace {

std::string env_name_of(std::string_view flag) {
  std::string out = "KNEXT_";
  for (char ch : flag) out.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(ch)));
  return out;
}

std::string env_name(const FlagRow& row) {
  return row.env_name != nullptr ? row.env_name : env_name_of(row.name);
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char ch : text + ",") {
    if (ch != ',') {
      item.push_back(ch);
    } else if (!item.empty()) {
      out.push_back(item);
      item.clear();
    }
  }
  return out;
}

cxxopts::Options make_options(const CliProgram& program, const std::vector<FlagRow>& rows) {
  cxxopts::Options options(program.name, program.description);
  options.custom_help("[options]");
  options.positional_help(program.positional_help);
  auto add = options.add_options();
  add("h,help", "Print this help and exit");
  add("version", "Print the version and exit");
  for (const auto& row : rows) {
    std::string help = std::string(row.help) + " [env " + env_name(row) + "]";
    if (row.repeatable) {
      add(row.name, help, cxxopts::value<std::vector<std::string>>());
      continue;
    }
    auto value = cxxopts::value<std::string>();
    if (row.is_switch) value->implicit_value("true");
    add(row.name, help, value);
  }
  add("command", "", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"command"});
  return options;
}

// cxxopts words its errors with the option name between quotes; pull it out to name the flag.
std::string quoted_name(const std::string& what) {
  auto first = what.find_first_of("'\xe2");
  if (first == std::string::npos) return what;
  auto start = what.find_first_not_of("'\xe2\x80\x98", first);
  auto stop = what.find_first_of("'\xe2", start);
  return what.substr(start, stop == std::string::npos ? std::string::npos : stop - start);
}

// Outside input quoted in a one-line error: control bytes are shown escaped, never raw.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char ch : text) {
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch < 0x20 || ch == 0x7f) {
      out += fmt::format("\\x{:02x}", ch);
    } else {
      out.push_back(static_cast<char>(ch));
    }
  }
  return out;
}

std::string dashed(const std::string& name) {
  return (name.size() == 1 ? "-" : "--") + name;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Expected<ParsedFlags> parse_flag_rows(
    const CliProgram& program, const std::vector<FlagRow>& rows,
    const std::vector<std::string>& args, const EnvLookup& env,
    const std::function<bool(size_t row, std::string_view)>& set) {
  auto dashdash = std::find(args.begin(), args.end(), "--");
  std::vector<const char*> argv{program.name};
  for (auto it = args.begin(); it != dashdash; ++it) argv.push_back(it->c_str());

  auto options = make_options(program, rows);
  cxxopts::ParseResult result;
  try {
    result = options.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const cxxopts::exceptions::no_such_option& e) {
    return Error{"unknown flag '" + printable(dashed(quoted_name(e.what()))) +
                 "'; see --help for the allowed flags (put the command and its own flags after "
                 "--)"};
  } catch (const cxxopts::exceptions::missing_argument& e) {
    auto name = quoted_name(e.what());
    for (const auto& row : rows) {
      if (name == row.name) return Error{dashed(name) + " needs a value: " + row.allowed};
    }
    return Error{dashed(name) + " needs a value"};
  } catch (const cxxopts::exceptions::exception& e) {
    return Error{"bad command line: " + printable(e.what()) + "; see --help"};
  }

  ParsedFlags parsed;
  if (result.count("help")) {
    parsed.help = true;
    return parsed;
  }
  if (result.count("version")) {
    parsed.version = true;
    return parsed;
  }

  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    std::vector<std::string> values;
    std::string source;
    if (result.count(row.name)) {
      values = row.repeatable ? result[row.name].as<std::vector<std::string>>()
                              : std::vector<std::string>{result[row.name].as<std::string>()};
      source = dashed(row.name);
    } else if (auto from_env = env(env_name(row))) {
      values = row.repeatable ? split_commas(*from_env) : std::vector<std::string>{*from_env};
      source = env_name(row) + " (for " + dashed(row.name) + ")";
    } else {
      continue;
    }
    for (const auto& value : values) {
      if (!set(i, value)) {
        return Error{source + ": '" + printable(value) + "' is not allowed; use " + row.allowed};
      }
    }
  }

  if (result.count("command")) parsed.positional = result["command"].as<std::vector<std::string>>();
  if (dashdash != args.end())
    parsed.positional.insert(parsed.positional.end(), dashdash + 1, args.end());
  return parsed;
}

std::vector<std::string> command_or_default(const std::vector<std::string>& command) {
  if (!command.empty()) return command;
  return {"node", "server.js"};
}

Status check_command(const std::vector<std::string>& command) {
  if (!command.empty() && command.front().empty()) {
    return Error{"the command is an empty string; give a program name or path after --"};
  }
  return ok_status();
}

std::string flag_rows_help(const CliProgram& program, const std::vector<FlagRow>& rows) {
  return make_options(program, rows).help({""});
}

}  // namespace knext
