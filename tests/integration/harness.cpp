#include "tests/integration/harness.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/process_wait.hpp"

namespace bp = boost::process;

namespace knext::test {

std::string launcher_bin() {
  return KNEXT_LAUNCH_BIN;
}
std::string sigreport_bin() {
  return KNEXT_SIGREPORT_BIN;
}
std::string with_signals_bin() {
  return KNEXT_WITH_SIGNALS_BIN;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "knext-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (pid_t child = 0; in >> child;) out.push_back(child);
  return out;
}

bool process_exists(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (stat.empty()) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

Launched::Launched(const std::vector<std::string>& launcher_args, LaunchOptions options)
    : pid_namespace_(options.pid_namespace) {
  std::vector<std::string> argv = options.wrapper;
  if (pid_namespace_) {
    for (const char* a : {"unshare", "--pid", "--fork", "--mount-proc"}) argv.emplace_back(a);
  }
  argv.push_back(launcher_bin());
  argv.insert(argv.end(), launcher_args.begin(), launcher_args.end());
  auto in_path = dir_.path() / "stdin";
  std::ofstream(in_path) << options.stdin_text;
  auto exe = argv.front().find('/') == std::string::npos ? bp::search_path(argv.front()).string()
                                                         : argv.front();
  bp::environment env = boost::this_process::environment();
  for (const auto& [name, value] : options.env) env[name] = value;
  std::string cwd = options.cwd.empty() ? dir_.path().string() : options.cwd;
  started_ = std::chrono::steady_clock::now();
  child_ =
      bp::child(bp::exe = exe, bp::args = std::vector<std::string>(argv.begin() + 1, argv.end()),
                env, bp::std_in<in_path.string(), bp::std_out>(dir_.path() / "out").string(),
                bp::std_err > (dir_.path() / "err").string(), bp::start_dir = cwd);
}

Launched::~Launched() {
  if (child_.running()) {
    ::kill(launcher_pid(), SIGKILL);
    ::kill(child_.id(), SIGKILL);
    child_.wait();
  }
}

pid_t Launched::launcher_pid() {
  if (launcher_pid_ > 0) return launcher_pid_;
  if (!pid_namespace_) return launcher_pid_ = child_.id();
  for (int i = 0; i < 500 && launcher_pid_ <= 0; ++i) {
    auto kids = children_of(child_.id());
    if (!kids.empty()) {
      launcher_pid_ = kids.front();
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  return launcher_pid_;
}

bool Launched::wait_child_started(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t l = launcher_pid();
    if (l > 0 && !children_of(l).empty()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

namespace {
bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}
}  // namespace

bool Launched::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  return poll_until([&] { return out().find(needle) != std::string::npos; }, timeout);
}

bool Launched::wait_for_err(const std::string& needle, std::chrono::milliseconds timeout) {
  return poll_until([&] { return err().find(needle) != std::string::npos; }, timeout);
}

void Launched::send(int signum) {
  ::kill(launcher_pid(), signum);
}

RunResult Launched::wait(std::chrono::milliseconds timeout) {
  RunResult r;
  if (knext::wait_with_timeout(child_, timeout)) {
    int native = child_.native_exit_code();
    r.exit_code = WIFEXITED(native) ? WEXITSTATUS(native) : 128 + WTERMSIG(native);
  } else {
    ::kill(launcher_pid(), SIGKILL);
    ::kill(child_.id(), SIGKILL);
    child_.wait();
  }
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
             .count();
  r.out = out();
  r.err = err();
  return r;
}

std::string Launched::out() const {
  return read_file(dir_.path() / "out");
}
std::string Launched::err() const {
  return read_file(dir_.path() / "err");
}

RunResult run_launcher(const std::vector<std::string>& launcher_args, LaunchOptions options,
                       std::chrono::milliseconds timeout) {
  Launched launched(launcher_args, std::move(options));
  return launched.wait(timeout);
}

}  // namespace knext::test
