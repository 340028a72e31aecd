// --learn-paths against the real fixture app, twice on one cache volume: the first start counts
// what users request and saves it at shutdown; the second warms the most requested route first.
// Proc, http_get, app_env and auto_argv follow gate_test.cpp's helpers.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include <boost/json.hpp>

#include "common/loopback.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/source_tree.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace knext::test;
using Clock = std::chrono::steady_clock;

namespace {

fs::path fixture_dir() {
  return kRoot / "tests" / "fixtures" / "next-app" / ".next" / "standalone";
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The lines of `log` that contain `needle`.
std::string lines_with(const std::string& log, const std::string& needle) {
  std::string out;
  for (size_t at = 0; at < log.size();) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    if (log.find(needle, at) < end) out += log.substr(at, end - at) + "\n";
    at = end + 1;
  }
  return out;
}

int free_port() {
  auto port = knext::free_loopback_port();
  REQUIRE_MESSAGE(port.ok(), port.error().message);
  return *port;
}

struct Response {
  int status = 0;  // 0: none
  std::string body;
};

// GET http://127.0.0.1:port<path>, Connection: close, read to EOF.
Response http_get(int port, const std::string& path, std::chrono::milliseconds timeout) {
  Response r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return r;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return r;
  }
  std::string raw;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[16384];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || std::sscanf(raw.c_str(), "HTTP/1.%*d %d", &r.status) != 1) {
    r.status = 0;
    return r;
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

// The launcher as a real process, its output in files, stopped (and its children) at scope exit.
class Proc {
 public:
  Proc(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra,
       const fs::path& cwd) {
    bp::environment env = boost::this_process::environment();
    std::vector<std::string> drop;
    for (const auto& entry : env) {
      std::string key = entry.get_name();
      if (key.rfind("KNEXT_", 0) == 0 || key == "NODE_OPTIONS" || key == "PORT" ||
          key == "HOSTNAME" || key == "NODE_COMPILE_CACHE") {
        drop.push_back(key);
      }
    }
    for (const auto& key : drop) env.erase(key);
    for (const auto& [key, value] : extra) env[key] = value;
    child_ = bp::child(bp::exe = argv.front(),
                       bp::args = std::vector<std::string>(argv.begin() + 1, argv.end()), env,
                       bp::std_in<bp::null, bp::std_out>(dir_.path() / "out").string(),
                       bp::std_err > (dir_.path() / "err").string(), bp::start_dir = cwd.string());
  }
  ~Proc() {
    if (!running()) return;
    ::kill(child_.id(), SIGTERM);
    wait_exit(10s);
    if (running()) ::kill(child_.id(), SIGKILL);
    std::error_code ec;
    child_.wait(ec);
    for (pid_t p : children_of(::getpid())) {  // orphans (gate_main.cpp makes us a subreaper)
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  bool running() {
    if (code_) return false;
    std::error_code ec;
    if (child_.running(ec)) return true;
    int native = child_.native_exit_code();
    code_ = WIFEXITED(native) ? WEXITSTATUS(native) : 128 + WTERMSIG(native);
    return false;
  }
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (running() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    return code_;
  }
  void signal(int sig) { ::kill(child_.id(), sig); }
  std::string log() const {
    return read_file(dir_.path() / "out") + read_file(dir_.path() / "err");
  }

 private:
  TempDir dir_;
  bp::child child_;
  std::optional<int> code_;
};

std::map<std::string, std::string> app_env(int port) {
  return {
      {"PORT", std::to_string(port)}, {"HOSTNAME", "127.0.0.1"}, {"NEXT_TELEMETRY_DISABLED", "1"}};
}

std::vector<std::string> auto_argv(int admin_port, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {launcher_bin(), "--admin-port", std::to_string(admin_port)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--");
  argv.push_back(node_bin());
  argv.push_back((fixture_dir() / "server.js").string());
  return argv;
}

json::value startup_of(int admin_port) {
  auto r = http_get(admin_port, "/startup", 2s);
  if (r.status != 200) return json::value();
  json::error_code ec;
  auto v = json::parse(r.body, ec);
  return ec ? json::value() : v;
}

// Polls /startup until background warming reached `state`; the last document.
json::value wait_background(int admin_port, std::string_view state, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  json::value last;
  while (Clock::now() < deadline) {
    last = startup_of(admin_port);
    if (const auto* o = last.if_object()) {
      const auto* bg = o->if_contains("background");
      if (bg != nullptr && bg->is_object() && bg->as_object().at("state") == state.data()) {
        return last;
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

std::optional<fs::path> find_record(const fs::path& volume) {
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(volume, ec)) {
    if (entry.path().filename() == "knext-traffic") return entry.path();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("--learn-paths: what users requested is saved at shutdown and warmed first next start") {
  TempDir volume;
  const std::vector<std::string> flags = {"--cache-dir", volume.path().string(), "--warm-timeout",
                                          "60s"};
  {
    int port = free_port();
    int admin = free_port();
    Proc first(auto_argv(admin, flags), app_env(port), fixture_dir());
    // Background warming and the late flush done: every warm-up request is behind us.
    auto done = wait_background(admin, "done", 90s);
    REQUIRE_MESSAGE(done.is_object(), first.log());
    REQUIRE_MESSAGE(done.at("warm_paths").as_array().at(0).at("path") == "/",
                    json::serialize(done));
    for (int i = 0; i < 4; ++i) {
      auto r = http_get(port, "/posts/hello?ref=" + std::to_string(i), 10s);
      REQUIRE_MESSAGE(r.status == 200, first.log());
    }
    REQUIRE(http_get(port, "/", 10s).status == 200);
    REQUIRE(http_get(port, "/users/7", 10s).status == 200);  // dynamic, no manifest lists it
    first.signal(SIGTERM);
    REQUIRE_MESSAGE(first.wait_exit(30s).has_value(), first.log());
    CHECK_MESSAGE(has(first.log(), "learned paths: saved"), first.log());
    MESSAGE("first start:\n" << lines_with(first.log(), "learned paths"));
  }
  auto record = find_record(volume.path());
  REQUIRE_MESSAGE(record.has_value(), "no knext-traffic on the volume");
  std::string text = read_file(*record);
  MESSAGE("record:\n" << text);
  CHECK(has(text, "\t/posts/[slug]\t4\t/posts/hello\n"));
  CHECK(has(text, "\t/users/[id]\t1\t/users/7\n"));
  CHECK_FALSE(has(text, "ref="));  // never the query
  const auto mode = fs::status(*record).permissions() & fs::perms::all;
  CHECK(mode == (fs::perms::owner_read | fs::perms::owner_write));

  int port = free_port();
  int admin = free_port();
  Proc second(auto_argv(admin, flags), app_env(port), fixture_dir());
  auto done = wait_background(admin, "done", 90s);
  REQUIRE_MESSAGE(done.is_object(), second.log());
  const auto& paths = done.at("warm_paths").as_array();
  const auto& top = paths.at(0).as_object();
  CHECK_MESSAGE(top.at("path") == "/posts/hello", json::serialize(done));
  CHECK(top.at("background") == false);
  CHECK(top.at("state") == "ok");
  std::string log = second.log();
  MESSAGE("second start:\n"
          << lines_with(log, "learned paths") << lines_with(log, "phase warm-path-done")
          << lines_with(log, "phase gate-open"));
  size_t warmed = log.find("phase warm-path-done");
  size_t gate = log.find("phase gate-open");
  REQUIRE_MESSAGE(warmed != std::string::npos, log);
  REQUIRE_MESSAGE(gate != std::string::npos, log);
  CHECK_MESSAGE(warmed < gate, log);
  CHECK_MESSAGE(has(log.substr(warmed, log.find('\n', warmed) - warmed), "/posts/hello -> 200"),
                log);
  // The dynamic route nobody's manifest names is warmed too, in the background.
  bool users = false;
  for (const auto& w : paths) users = users || w.at("path") == "/users/7";
  CHECK_MESSAGE(users, json::serialize(done));
}

TEST_CASE("--learn-paths: a damaged or untrusted record is a miss with one line; the app starts") {
  TempDir volume;
  const std::vector<std::string> flags = {"--cache-dir", volume.path().string(), "--warm-timeout",
                                          "60s"};
  {  // A first start makes the volume's build directory and saves a record.
    int port = free_port();
    int admin = free_port();
    Proc first(auto_argv(admin, flags), app_env(port), fixture_dir());
    REQUIRE_MESSAGE(wait_background(admin, "done", 90s).is_object(), first.log());
    REQUIRE(http_get(port, "/list", 10s).status == 200);
    first.signal(SIGTERM);
    REQUIRE_MESSAGE(first.wait_exit(30s).has_value(), first.log());
  }
  auto record = find_record(volume.path());
  REQUIRE_MESSAGE(record.has_value(), "no knext-traffic on the volume");
  REQUIRE(has(read_file(*record), "\t/list\n"));

  struct Bad {
    const char* what;
    std::string text;
    fs::perms mode;
    const char* logged;
  };
  const std::vector<Bad> cases = {
      {"damaged", "# knext-traffic v1\n# build-id x\n9\t/list\n",
       fs::perms::owner_read | fs::perms::owner_write, "not 4 tab-separated fields"},
      {"another build's", "# knext-traffic v1\n# build-id other\n9\t/list\t9\t/list\n",
       fs::perms::owner_read | fs::perms::owner_write, "of build other"},
      {"writable by others", "# knext-traffic v1\n# build-id x\n", fs::perms::all,
       "writable by group or others"},
      {"oversized", std::string(70 * 1024, '#'), fs::perms::owner_read | fs::perms::owner_write,
       ""},
  };
  for (const auto& bad : cases) {
    CAPTURE(bad.what);
    {
      std::ofstream out(*record, std::ios::trunc);
      out << bad.text;
    }
    fs::permissions(*record, bad.mode);
    int port = free_port();
    int admin = free_port();
    Proc app(auto_argv(admin, flags), app_env(port), fixture_dir());
    auto done = wait_background(admin, "done", 90s);
    REQUIRE_MESSAGE(done.is_object(), app.log());
    std::string ignored = lines_with(app.log(), "learned paths: record ignored");
    CHECK_MESSAGE(std::count(ignored.begin(), ignored.end(), '\n') == 1, app.log());
    CHECK_MESSAGE(has(ignored, bad.logged), ignored);
    CHECK(done.at("warm_paths").as_array().at(0).at("path") == "/");
    CHECK(http_get(port, "/list", 10s).status == 200);
  }
}
