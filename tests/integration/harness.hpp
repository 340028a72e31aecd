#pragma once
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>
#include "common/boost_process.hpp"

namespace knext::test {

using namespace std::chrono_literals;

std::string launcher_bin();
std::string sigreport_bin();
std::string with_signals_bin();

// A scratch directory removed at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  double ms = 0;  // from start to exit
};

struct LaunchOptions {
  // Run as real PID 1 in a fresh PID namespace (unshare --pid --fork --mount-proc).
  bool pid_namespace = true;
  std::string stdin_text;
  // Program run before the launcher (e.g. with-signals), prepended to its argv.
  std::vector<std::string> wrapper;
  // Added to (or replacing in) this process's environment.
  std::map<std::string, std::string> env;
  // Working directory; default: a scratch directory.
  std::string cwd;
};

// The launcher running as a real process, its stdout and stderr going to files.
class Launched {
 public:
  Launched(const std::vector<std::string>& launcher_args, LaunchOptions options = {});
  ~Launched();
  Launched(const Launched&) = delete;
  Launched& operator=(const Launched&) = delete;

  // The launcher's pid as seen from here (inside unshare it is the unshare's child).
  pid_t launcher_pid();
  // Blocks until the launcher has spawned its child; false on timeout.
  bool wait_child_started(std::chrono::milliseconds timeout = 5s);
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout = 5s);
  bool wait_for_err(const std::string& needle, std::chrono::milliseconds timeout = 5s);
  void send(int signum);
  // Waits for exit; on timeout kills everything and reports exit_code -1.
  RunResult wait(std::chrono::milliseconds timeout = 10s);
  std::string out() const;
  std::string err() const;

 private:
  TempDir dir_;
  boost::process::child child_;
  bool pid_namespace_;
  std::chrono::steady_clock::time_point started_;
  pid_t launcher_pid_ = -1;
};

RunResult run_launcher(const std::vector<std::string>& launcher_args, LaunchOptions options = {},
                       std::chrono::milliseconds timeout = 10s);

std::vector<pid_t> children_of(pid_t pid);
bool process_exists(pid_t pid);
std::vector<std::string> lines(const std::string& text);
std::string read_file(const std::filesystem::path& path);
// Polls `done` every 20 ms until it holds, and once more at `timeout`; its last answer.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout);

}  // namespace knext::test
