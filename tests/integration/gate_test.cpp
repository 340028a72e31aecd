// The startup gate (--gate=handoff), driven for real: knext-launch in front of the fixture Next.js
// app or tests/fixtures/servers/status-server.cjs (Node 24 from .deps/node), and Knative's real
// queue-proxy (.deps/bin/queue-proxy, scripts/setup-queue-proxy.sh) in front of that where
// readiness matters. Everything is on loopback. queue-proxy binds the fixed ports 8022 and 9090,
// so these tests run one at a time, and scripts/test.sh runs this binary in a fresh network
// namespace.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "common/loopback.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/source_tree.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;
using namespace knext::test;
using Clock = std::chrono::steady_clock;

namespace {

fs::path fixture_dir() {
  return kRoot / "tests" / "fixtures" / "next-app" / ".next" / "standalone";
}
std::string fixture_server() {
  return (fixture_dir() / "server.js").string();
}
std::string status_server() {
  return (kRoot / "tests" / "fixtures" / "servers" / "status-server.cjs").string();
}
std::string run_queue_proxy_script() {
  return (kRoot / "tests" / "qp" / "run-queue-proxy.sh").string();
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t mid = v.size() / 2;
  return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

std::string fixed1(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  return s.str();
}

// ---- loopback sockets ---------------------------------------------------------------------------

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  auto a = knext::loopback_address(0);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

int ms_left(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// A connected socket to 127.0.0.1:port, or -1 with `err` set (ECONNREFUSED, ETIMEDOUT, ...).
int connect_loopback(int port, Clock::time_point deadline, int& err) {
  err = 0;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    err = errno;
    return -1;
  }
  auto a = knext::loopback_address(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) {
      err = errno;
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) {
      err = ETIMEDOUT;
      ::close(fd);
      return -1;
    }
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

// One TCP connect: 0 if it completed, else its errno.
int connect_errno(int port) {
  int err = 0;
  int fd = connect_loopback(port, Clock::now() + 1s, err);
  if (fd >= 0) ::close(fd);
  return err;
}

struct HttpResult {
  int status = 0;  // 0: no response
  std::string body;
  std::string error;  // why there is no response
  int connect_errno = 0;
  double ms = 0;     // connect to the end of the response
  std::string head;  // status line and headers, lower-cased
};

std::string dechunk(const std::string& in) {
  std::string out;
  size_t at = 0;
  while (at < in.size()) {
    size_t eol = in.find("\r\n", at);
    if (eol == std::string::npos) break;
    size_t size = std::strtoul(in.substr(at, eol - at).c_str(), nullptr, 16);
    if (size == 0) break;
    out += in.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return out;
}

// GET http://127.0.0.1:port<path> over a new connection (Connection: close), read to EOF.
HttpResult http_get(int port, const std::string& path, std::chrono::milliseconds timeout,
                    const std::vector<std::string>& headers = {"User-Agent: knext-gate-test"}) {
  HttpResult r;
  auto start = Clock::now();
  auto deadline = start + timeout;
  int fd = connect_loopback(port, deadline, r.connect_errno);
  if (fd < 0) {
    r.error = std::string("connect: ") + std::strerror(r.connect_errno);
    r.ms = ms_since(start);
    return r;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  request += "\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) break;
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  bool eof = false;
  while (sent == request.size()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) break;
    char buf[16384];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      eof = n == 0;
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  r.ms = ms_since(start);
  size_t head_end = raw.find("\r\n\r\n");
  if (!eof || head_end == std::string::npos) {
    r.error = sent < request.size() ? "send failed"
              : eof                 ? "connection closed before a full response"
                                    : "timed out after " + std::to_string(timeout.count()) + "ms";
    return r;
  }
  std::string head = raw.substr(0, head_end);
  if (std::sscanf(head.c_str(), "HTTP/1.%*d %d", &r.status) != 1) {
    r.error = "bad status line: " + head.substr(0, head.find("\r\n"));
    return r;
  }
  r.body = raw.substr(head_end + 4);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (contains(lower, "transfer-encoding: chunked")) r.body = dechunk(r.body);
  r.head = lower;
  return r;
}

std::string describe(const HttpResult& r) {
  return r.status ? "HTTP " + std::to_string(r.status) + " in " + fixed1(r.ms) + "ms"
                  : r.error + " after " + fixed1(r.ms) + "ms";
}

// ---- processes ----------------------------------------------------------------------------------

std::vector<pid_t> descendants(pid_t pid) {
  std::vector<pid_t> out;
  for (pid_t child : children_of(pid)) {
    out.push_back(child);
    auto more = descendants(child);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

// Pids of the live Proc objects: every other child of this process (a subreaper, see
// gate_main.cpp) is an orphan left by a launcher that died first.
std::set<pid_t>& live_procs() {
  static std::set<pid_t> pids;
  return pids;
}

// SIGKILLs and reaps the orphans this process inherited; returns how many there were.
int kill_strays() {
  int n = 0;
  for (int pass = 0; pass < 5; ++pass) {
    bool any = false;
    for (pid_t p : children_of(::getpid())) {
      if (live_procs().count(p)) continue;
      any = true;
      ++n;
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    if (!any) break;
  }
  return n;
}

// Those of `pids` still running (zombies do not count).
std::vector<pid_t> still_alive(const std::vector<pid_t>& pids) {
  std::vector<pid_t> out;
  for (pid_t p : pids) {
    if (process_exists(p)) out.push_back(p);
  }
  return out;
}

std::string pid_list(const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) out += (out.empty() ? "" : " ") + std::to_string(p);
  return out;
}

struct ProcOptions {
  std::map<std::string, std::string> env;  // on top of this process's, less KNEXT_*, PORT, ...
  fs::path cwd;                            // default: a scratch directory
  bool kill_hard = false;                  // clean-up: SIGKILL at once (queue-proxy drains 30 s)
};

// A real process, stdout and stderr to files, cleaned up (with its descendants) at scope exit.
class Proc {
 public:
  Proc(std::string name, const std::vector<std::string>& argv, ProcOptions options = {})
      : name_(std::move(name)), kill_hard_(options.kill_hard) {
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
    for (const auto& [key, value] : options.env) env[key] = value;
    fs::path cwd = options.cwd.empty() ? dir_.path() : options.cwd;
    started_ = Clock::now();
    child_ = bp::child(bp::exe = argv.front(),
                       bp::args = std::vector<std::string>(argv.begin() + 1, argv.end()), env,
                       bp::std_in<bp::null, bp::std_out>(dir_.path() / "out").string(),
                       bp::std_err > (dir_.path() / "err").string(), bp::start_dir = cwd.string());
    live_procs().insert(pid());
  }

  ~Proc() {
    if (running()) {
      if (!kill_hard_) {
        ::kill(pid(), SIGTERM);
        wait_exit(4s);
      }
      if (running()) {
        ::kill(pid(), SIGKILL);
        std::error_code ec;
        child_.wait(ec);
      }
    }
    live_procs().erase(pid());
    kill_strays();
  }

  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  pid_t pid() const { return child_.id(); }
  Clock::time_point started() const { return started_; }

  bool running() {
    if (code_) return false;
    std::error_code ec;
    if (child_.running(ec)) return true;
    int native = child_.native_exit_code();
    code_ = WIFEXITED(native) ? WEXITSTATUS(native) : 128 + WTERMSIG(native);
    exited_ms_ = ms_since(started_);
    return false;
  }

  // The exit code (128+N for signal N), or nothing if still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (running() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return code_;
  }
  // Milliseconds from spawn to exit, as observed (5 ms polling).
  double exited_ms() const { return exited_ms_; }

  void signal(int sig) { ::kill(pid(), sig); }

  std::string out() const { return read_file(dir_.path() / "out"); }
  std::string err() const { return read_file(dir_.path() / "err"); }

  // Polls stderr for `needle`; gives up early when the process has exited.
  bool wait_for_err(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (contains(err(), needle)) return true;
      if (!running()) return contains(err(), needle);
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::string report() const {
    return "---- " + name_ + " stdout:\n" + out() + "---- " + name_ + " stderr:\n" + err();
  }

 private:
  TempDir dir_;
  std::string name_;
  bool kill_hard_;
  bp::child child_;
  Clock::time_point started_;
  std::optional<int> code_;
  double exited_ms_ = 0;
};

std::map<std::string, std::string> app_env(int port) {
  return {
      {"PORT", std::to_string(port)}, {"HOSTNAME", "127.0.0.1"}, {"NEXT_TELEMETRY_DISABLED", "1"}};
}

std::vector<std::string> launcher_argv(const std::vector<std::string>& flags,
                                       const std::vector<std::string>& command) {
  std::vector<std::string> argv = {launcher_bin(), "--admin-port", "0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

// ---- queue-proxy --------------------------------------------------------------------------------

class QueueProxy {
 public:
  QueueProxy(int user_port, const std::string& probe)
      : port_(free_port()),
        proc_("queue-proxy", {"/bin/bash", run_queue_proxy_script()},
              {.env = {{"USER_PORT", std::to_string(user_port)},
                       {"QP_PORT", std::to_string(port_)},
                       {"QP_PROBE", probe},
                       {"QP_LOG_LEVEL", "warn"}},
               .kill_hard = true}) {}

  int port() const { return port_; }
  Proc& proc() { return proc_; }

  // True once the serving port accepts connections.
  bool wait_up(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (connect_errno(port_) == 0) return true;
      if (!proc_.running()) return false;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

 private:
  int port_;
  Proc proc_;
};

struct Readiness {
  bool ready = false;
  double ms = 0;  // from `since`
  int attempts = 0;
  std::string last;
};

// The activator's probe: GET /healthz with K-Network-Probe: queue and the activator's UA, a 300 ms
// client timeout, every 200 ms, until queue-proxy answers 200 "queue".
Readiness wait_activator_ready(int qp_port, Clock::time_point since,
                               std::chrono::milliseconds limit) {
  Readiness r;
  while (Clock::now() < since + limit) {
    auto attempt = Clock::now();
    ++r.attempts;
    auto h = http_get(qp_port, "/healthz", 300ms,
                      {"K-Network-Probe: queue", "User-Agent: Knative-Activator-Probe"});
    if (h.status == 200 && h.body == "queue") {
      r.ready = true;
      r.ms = ms_since(since);
      return r;
    }
    r.last = describe(h) + (h.body.empty() ? "" : " body '" + h.body.substr(0, 200) + "'");
    std::this_thread::sleep_until(attempt + 200ms);
  }
  r.ms = ms_since(since);
  return r;
}

struct ColdStart {
  double ready_ms = 0;
  double first_slow_ms = 0, median_slow_ms = 0;
  double first_dynamic_ms = 0, median_dynamic_ms = 0;
};

// The fixture app behind queue-proxy, with or without knext-launch in front of node: time to
// ready (from the spawn), the first /slow and /dynamic after ready, then the steady state. The
// launcher holds the gate for every warm path (--warm-gate=all); the default is tested below.
ColdStart cold_start_behind_queue_proxy(const std::string& probe, bool with_launcher) {
  ColdStart c;
  int app_port = free_port();
  QueueProxy qp(app_port, probe);
  REQUIRE_MESSAGE(qp.wait_up(10s), "queue-proxy did not start\n" << qp.proc().report());

  std::vector<std::string> node_cmd = {node_bin(), fixture_server()};
  auto argv = with_launcher
                  ? launcher_argv({"--warm-gate", "all", "--warm-path", "/slow", "--warm-path",
                                   "/dynamic", "--warm-path", "/", "--warm-timeout", "60s"},
                                  node_cmd)
                  : node_cmd;
  Proc app(with_launcher ? "knext-launch" : "node", argv,
           {.env = app_env(app_port), .cwd = fixture_dir()});

  auto ready = wait_activator_ready(qp.port(), app.started(), 40s);
  std::string app_err_at_ready = app.err();
  REQUIRE_MESSAGE(ready.ready, "queue-proxy never reported ready ("
                                   << ready.attempts << " attempts, last: " << ready.last << ")\n"
                                   << app.report() << qp.proc().report());
  c.ready_ms = ready.ms;
  if (with_launcher) {
    // Readiness must come from the gate: every warm path was done before queue-proxy said ready.
    CHECK_MESSAGE(count_of(app_err_at_ready, "phase warm-path-done") == 3,
                  "queue-proxy reported ready before warm-up finished:\n"
                      << app_err_at_ready);
  }

  auto first_slow = http_get(qp.port(), "/slow", 10s);
  REQUIRE_MESSAGE(first_slow.status == 200, "first /slow: " << describe(first_slow));
  CHECK(contains(first_slow.body, "knext fixture: slow"));
  auto first_dynamic = http_get(qp.port(), "/dynamic", 10s);
  REQUIRE_MESSAGE(first_dynamic.status == 200, "first /dynamic: " << describe(first_dynamic));
  CHECK(contains(first_dynamic.body, "knext fixture: dynamic"));
  c.first_slow_ms = first_slow.ms;
  c.first_dynamic_ms = first_dynamic.ms;

  std::vector<double> slow, dynamic;
  for (int i = 0; i < 10; ++i) {
    auto s = http_get(qp.port(), "/slow", 10s);
    REQUIRE_MESSAGE(s.status == 200, "/slow: " << describe(s));
    slow.push_back(s.ms);
    auto d = http_get(qp.port(), "/dynamic", 10s);
    REQUIRE_MESSAGE(d.status == 200, "/dynamic: " << describe(d));
    dynamic.push_back(d.ms);
  }
  c.median_slow_ms = median(slow);
  c.median_dynamic_ms = median(dynamic);

  MESSAGE("cold start behind queue-proxy, probe "
          << probe << ", " << std::string(with_launcher ? "knext-launch" : "plain node")
          << ": ready " << fixed1(c.ready_ms) << " ms after spawn; first /slow "
          << fixed1(c.first_slow_ms) << " ms (steady median " << fixed1(c.median_slow_ms)
          << " ms); first /dynamic " << fixed1(c.first_dynamic_ms) << " ms (steady median "
          << fixed1(c.median_dynamic_ms)
          << " ms); a request waiting from the spawn gets /slow after "
          << fixed1(c.ready_ms + c.first_slow_ms) << " ms");
  return c;
}

// How far the first requests after ready are from the steady state, printed and not asserted:
// a timing goal on a shared 2-core machine is the bench's to show (its first-response tables),
// and one preemption or GC doubles a 7 ms render. What the tests assert is that the paths were
// warmed: before ready for those that hold the gate, after it for the others.
std::string ratio_text(double first_ms, double steady_ms) {
  return fixed1(first_ms) + " ms, " + (steady_ms > 0 ? fixed1(first_ms / steady_ms) : "-") +
         "x its steady median " + fixed1(steady_ms) + " ms";
}

void print_first_request_ratios(const ColdStart& c) {
  MESSAGE("first after ready: /slow " << ratio_text(c.first_slow_ms, c.median_slow_ms)
                                      << "; /dynamic "
                                      << ratio_text(c.first_dynamic_ms, c.median_dynamic_ms));
}

// Polls the public port until `line` shows in the launcher's log: every connect before that must
// be refused. The log is read after each connect, and the launcher logs `line` before it tells
// the hook to open, so a connect that succeeded without the line in the log is a leak.
struct HeldClosed {
  int refused = 0;
  int accepted_early = 0;
  int other = 0;  // neither refused nor accepted (errno)
  bool line_seen = false;
  double line_seen_ms = 0;  // from the launcher's spawn
};

HeldClosed watch_port_closed(Proc& app, int port, const std::string& line,
                             std::chrono::milliseconds limit) {
  HeldClosed h;
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    int e = connect_errno(port);
    bool seen = contains(app.err(), line);
    if (e == 0 && !seen)
      ++h.accepted_early;
    else if (e == ECONNREFUSED)
      ++h.refused;
    else if (e != 0)
      ++h.other;
    if (seen) {
      h.line_seen = true;
      h.line_seen_ms = ms_since(app.started());
      break;
    }
    if (!app.running()) break;
    std::this_thread::sleep_for(25ms);
  }
  return h;
}

}  // namespace

// ---- 1, 2: cold start behind the real queue-proxy -----------------------------------------------

TEST_CASE(
    "queue-proxy, tcp probe: behind knext-launch --warm-gate=all ready only once every warm path "
    "is done; the first requests are answered (their ratio to steady printed)") {
  print_first_request_ratios(cold_start_behind_queue_proxy("tcp", true));
}

TEST_CASE(
    "queue-proxy, http probe on /: behind knext-launch --warm-gate=all ready only once every warm "
    "path is done; the first requests are answered (their ratio to steady printed)") {
  print_first_request_ratios(cold_start_behind_queue_proxy("http:/", true));
}

// The comparison's own assertions are those of cold_start_behind_queue_proxy: queue-proxy reports
// the plain app ready and its first and steady requests answer 200 with the fixture's pages.
TEST_CASE(
    "queue-proxy, tcp probe: plain node server.js for comparison: ready, and the first requests "
    "are answered (their ratio to steady printed)") {
  print_first_request_ratios(cold_start_behind_queue_proxy("tcp", false));
}

TEST_CASE(
    "queue-proxy, http probe on /: plain node server.js for comparison: ready, and the first "
    "requests are answered (their ratio to steady printed)") {
  print_first_request_ratios(cold_start_behind_queue_proxy("http:/", false));
}

// ---- 3: a warm path that keeps failing ----------------------------------------------------------

// A 5xx is an answer: after a few tries (not --warm-timeout) --warm-fail applies.
TEST_CASE(
    "a warm path answering 500 holds PORT closed for a few tries, then --warm-fail "
    "applies") {
  int port = free_port();
  SUBCASE("--warm-fail=open opens the gate anyway and names the path and status") {
    Proc app(
        "knext-launch",
        launcher_argv({"--warm-path", "/broken", "--warm-timeout", "30s", "--warm-fail", "open"},
                      {node_bin(), status_server()}),
        {.env = app_env(port)});
    REQUIRE_MESSAGE(app.wait_for_err("phase server-listening-internal", 10s), app.report());
    auto held = watch_port_closed(app, port, "warm-up failed", 6s);
    CHECK_MESSAGE(held.line_seen, app.report());
    CHECK_MESSAGE(held.accepted_early == 0, "PORT accepted before warm-up gave up\n"
                                                << app.report());
    CHECK(held.other == 0);
    CHECK(held.refused >= 1);
    // Not held for --warm-timeout (30 s): the line came within the 6 s watch, and names the 500.
    REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 3s), app.report());
    auto err = app.err();
    CHECK_MESSAGE(contains(err, "warm-up failed: /broken (HTTP 500)"), err);
    CHECK(contains(err, "--warm-fail=open"));
    CHECK(!contains(err, "phase warm-path-done"));

    auto root = http_get(port, "/", 3s);
    CHECK_MESSAGE(root.status == 200, describe(root));
    CHECK(root.body == "ok /");
    auto broken = http_get(port, "/broken", 3s);  // the same server, now public
    CHECK_MESSAGE(broken.status == 500, describe(broken));

    app.signal(SIGTERM);
    auto code = app.wait_exit(5s);
    REQUIRE(code);
    CHECK(*code == 128 + SIGTERM);  // node's default SIGTERM action, passed through
  }
  SUBCASE("--warm-fail=exit stops the app, exits 1 and names the path and status") {
    Proc app("knext-launch",
             launcher_argv({"--warm-path", "/broken", "--warm-timeout", "30s", "--warm-fail",
                            "exit", "--grace", "2s"},
                           {node_bin(), status_server()}),
             {.env = app_env(port)});
    REQUIRE_MESSAGE(app.wait_for_err("phase server-listening-internal", 10s), app.report());
    auto held = watch_port_closed(app, port, "warm-up failed", 8s);
    CHECK_MESSAGE(held.accepted_early == 0, app.report());
    CHECK(held.refused >= 1);
    auto code = app.wait_exit(5s);
    // Not held for --warm-timeout (30 s): it exited within the 8 s watch and 5 s wait.
    REQUIRE_MESSAGE(code, "the launcher did not exit\n" << app.report());
    CHECK(*code == 1);
    CHECK(connect_errno(port) == ECONNREFUSED);
    auto err = app.err();
    CHECK_MESSAGE(contains(err, "/broken (HTTP 500)"), err);
    CHECK(contains(err, "--warm-fail=exit"));
    CHECK(!contains(err, "phase gate-open"));
  }
}

// ---- 4: a server that never listens
// --------------------------------------------------------------

TEST_CASE("a server that never listens: the launcher exits 1 after --warm-timeout, bounded") {
  int port = free_port();
  std::string script;
  SUBCASE("node exits on SIGTERM") {
    script = "setInterval(() => {}, 1000)";
  }
  SUBCASE("node ignores SIGTERM: SIGKILL after --grace") {
    script = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)";
  }
  CAPTURE(script);
  Proc app("knext-launch",
           launcher_argv({"--warm-timeout", "2s", "--grace", "2s"}, {node_bin(), "-e", script}),
           {.env = app_env(port)});
  REQUIRE_MESSAGE(app.wait_for_err("phase hook-loaded", 3s), app.report());
  auto family = descendants(app.pid());  // node and the launcher's warm-up worker, if any
  auto code = app.wait_exit(std::chrono::milliseconds(2000 + 2000 + 1500));
  REQUIRE_MESSAGE(code, "still running after warm timeout + grace + 1.5 s\n" << app.report());
  CHECK(*code == 1);
  CHECK_MESSAGE(still_alive(family).empty(), "left running: " << pid_list(still_alive(family))
                                                              << "\n"
                                                              << app.report());
  CHECK(app.exited_ms() >= 1900);
  auto err = app.err();
  CHECK_MESSAGE(contains(err, "phase hook-loaded"), err);  // the gate really was on
  CHECK_MESSAGE(contains(err, "did not listen within --warm-timeout"), err);
  CHECK(!contains(err, "phase gate-open"));
  MESSAGE("never listens (" << script << "): exit " << *code << " after " << fixed1(app.exited_ms())
                            << " ms");
}

// ---- 5: SIGTERM while warm-up is in flight
// --------------------------------------------------------

TEST_CASE("SIGTERM during warm-up: the launcher exits promptly with the child's status") {
  int port = free_port();
  SUBCASE("status server, warm path answering after 10 s, exits 42 on SIGTERM") {
    auto env = app_env(port);
    env["STATUS_SERVER_TERM_EXIT"] = "42";
    Proc app("knext-launch",
             launcher_argv({"--warm-path", "/work/10000", "--warm-timeout", "60s"},
                           {node_bin(), status_server()}),
             {.env = env});
    REQUIRE_MESSAGE(app.wait_for_err("phase server-listening-internal", 10s), app.report());
    std::this_thread::sleep_for(300ms);  // the server is now working on the warm-up GET
    CHECK(connect_errno(port) == ECONNREFUSED);
    auto family = descendants(app.pid());  // node and the launcher's warm-up worker, if any
    auto signalled = Clock::now();
    app.signal(SIGTERM);
    auto code = app.wait_exit(3s);
    double took = ms_since(signalled);
    REQUIRE_MESSAGE(code, "no exit within 3 s of SIGTERM\n" << app.report());
    CHECK_MESSAGE(*code == 42, app.report());
    CHECK_MESSAGE(still_alive(family).empty(), "left running: " << pid_list(still_alive(family)));
    CHECK(took < 3000);
    CHECK_MESSAGE(contains(app.out(), "status-server: SIGTERM, exiting with 42"), app.report());
    CHECK(contains(app.err(), "phase child-exited"));
    CHECK(!contains(app.err(), "phase gate-open"));
    MESSAGE("SIGTERM during warm-up (status server): exit " << *code << " after " << fixed1(took)
                                                            << " ms");
  }
  SUBCASE("the fixture Next app, warm paths /slow /list /dynamic /") {
    Proc app("knext-launch",
             launcher_argv({"--warm-path", "/slow", "--warm-path", "/list", "--warm-path",
                            "/dynamic", "--warm-path", "/", "--warm-timeout", "60s"},
                           {node_bin(), fixture_server()}),
             {.env = app_env(port), .cwd = fixture_dir()});
    REQUIRE_MESSAGE(app.wait_for_err("phase server-listening-internal", 20s), app.report());
    REQUIRE_MESSAGE(!contains(app.err(), "phase gate-open"), "warm-up already over\n"
                                                                 << app.report());
    auto family = descendants(app.pid());
    auto signalled = Clock::now();
    app.signal(SIGTERM);
    auto code = app.wait_exit(3s);
    double took = ms_since(signalled);
    REQUIRE_MESSAGE(code, "no exit within 3 s of SIGTERM\n" << app.report());
    CHECK_MESSAGE(*code == 143, app.report());
    CHECK_MESSAGE(still_alive(family).empty(), "left running: " << pid_list(still_alive(family)));
    CHECK(took < 3000);
    CHECK(contains(app.err(), "phase child-exited"));
    CHECK(contains(app.err(), "code 143"));
    CHECK(!contains(app.err(), "phase gate-open"));
    MESSAGE("SIGTERM during warm-up (Next): exit " << *code << " after " << fixed1(took) << " ms");
  }
}

// ---- 6: the user's NODE_OPTIONS
// ---------------------------------------------------------------------

TEST_CASE("the user's NODE_OPTIONS are kept, the hook's --require is added") {
  TempDir dir;
  auto marker = dir.path() / "marker.cjs";
  std::ofstream(marker) << "process.stderr.write('knext-test-marker loaded in pid ' + process.pid "
                           "+ '\\n');\n";
  int port = free_port();
  auto env = app_env(port);
  std::string user_options = "--max-old-space-size=123 --require " + marker.string();
  env["NODE_OPTIONS"] = user_options;
  Proc app("knext-launch", launcher_argv({"--warm-path", "/info"}, {node_bin(), status_server()}),
           {.env = env});
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 15s), app.report());
  auto info = http_get(port, "/info", 3s);
  REQUIRE_MESSAGE(info.status == 200, describe(info));
  INFO("/info: " << info.body);
  auto err = app.err();
  CHECK_MESSAGE(count_of(err, "knext-test-marker loaded in pid") == 1, err);
  CHECK(contains(err, "phase hook-loaded"));
  CHECK(contains(err, "phase server-listening-internal"));
  CHECK(contains(err, "phase warm-path-done"));
  // The user's options come first, unchanged, then the hook.
  CHECK(contains(info.body, "\"nodeOptions\":\"" + user_options + " --require "));
  CHECK(contains(info.body, "knext-hook.cjs"));
  // --max-old-space-size=123 took effect: V8's heap limit is old space + young generation
  // (315 MiB with 123 here), far below the default (over 2 GiB on this machine).
  auto at = info.body.find("\"heapLimitMiB\":");
  REQUIRE(at != std::string::npos);
  int heap_mib = std::atoi(info.body.c_str() + at + std::strlen("\"heapLimitMiB\":"));
  CHECK(heap_mib >= 123);
  CHECK(heap_mib < 1024);
  // The marker ran in the server process itself.
  auto pid_at = info.body.find("\"pid\":");
  REQUIRE(pid_at != std::string::npos);
  std::string server_pid = std::to_string(std::atoi(info.body.c_str() + pid_at + 6));
  CHECK(contains(err, "knext-test-marker loaded in pid " + server_pid + "\n"));
}

// ---- 7: the proxy gate (--gate=proxy) -----------------------------------------------------------

TEST_CASE("proxy gate: requests during warm-up are held, then all answered; ready path 503, 200") {
  int port = free_port();
  Proc app("knext-launch",
           launcher_argv({"--gate", "proxy", "--warm-path", "/work/1500", "--warm-timeout", "20s"},
                         {node_bin(), status_server()}),
           {.env = app_env(port)});
  REQUIRE_MESSAGE(app.wait_for_err("phase child-spawned", 3s), app.report());
  std::this_thread::sleep_for(100ms);  // the launcher listens on PORT right after the spawn
  auto not_ready = http_get(port, "/_knext/ready", 3s);
  CHECK_MESSAGE(not_ready.status == 503, describe(not_ready));

  constexpr int kClients = 20;
  std::vector<HttpResult> results(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(
        [&, i] { results[i] = http_get(port, "/held-" + std::to_string(i), 15s); });
  }
  for (auto& t : clients) t.join();
  REQUIRE_MESSAGE(contains(app.err(), "phase gate-open"), app.report());
  for (int i = 0; i < kClients; ++i) {
    CAPTURE(i);
    CHECK_MESSAGE(results[i].status == 200, describe(results[i]));
    CHECK(results[i].connect_errno == 0);
    CHECK(contains(results[i].body, "ok /held-" + std::to_string(i)));
  }
  // The held requests were answered only once warm: after the 1.5 s warm path.
  double fastest = results[0].ms;
  for (const auto& r : results) fastest = std::min(fastest, r.ms);
  CHECK(fastest > 1000);
  auto ready = http_get(port, "/_knext/ready", 3s);
  CHECK_MESSAGE(ready.status == 200, describe(ready));
  MESSAGE("proxy gate: " << kClients << " held requests answered, fastest after " << fixed1(fastest)
                         << " ms");
}

TEST_CASE("proxy gate: a server that never listens makes the launcher exit 1 after the timeout") {
  int port = free_port();
  Proc app("knext-launch",
           launcher_argv({"--gate", "proxy", "--warm-timeout", "2s", "--grace", "2s"},
                         {node_bin(), "-e", "setInterval(() => {}, 1000)"}),
           {.env = app_env(port)});
  auto code = app.wait_exit(std::chrono::milliseconds(2000 + 2000 + 1500));
  REQUIRE_MESSAGE(code, "still running\n" << app.report());
  CHECK(*code == 1);
  CHECK(app.exited_ms() >= 1900);
  CHECK_MESSAGE(contains(app.err(), "did not listen within --warm-timeout"), app.report());
}

// ---- 8: no per-request hop in the default (handoff) mode ----------------------------------------

namespace {

// The pid among `candidates` holding the socket listening on 127.0.0.1/0.0.0.0:port, or 0.
pid_t listener_owner(int port, const std::vector<pid_t>& candidates) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  std::string inode;
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout, node;
    f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> node;
    auto colon = local.find(':');
    if (state == "0A" && colon != std::string::npos &&
        std::stoi(local.substr(colon + 1), nullptr, 16) == port) {
      inode = node;
    }
  }
  if (inode.empty()) return 0;
  std::string wanted = "socket:[" + inode + "]";
  for (pid_t pid : candidates) {
    std::error_code ec;
    for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      std::error_code link_ec;
      if (fs::read_symlink(fd.path(), link_ec).string() == wanted) return pid;
    }
  }
  return 0;
}

}  // namespace

TEST_CASE("handoff: node itself owns the public port, so the launcher is not on the data path") {
  int port = free_port();
  for (std::string gate : {"handoff", "proxy"}) {
    CAPTURE(gate);
    Proc app("knext-launch", launcher_argv({"--gate", gate}, {node_bin(), status_server()}),
             {.env = app_env(port)});
    REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 10s), app.report());
    auto response = http_get(port, "/ok", 3s);
    CHECK(response.status == 200);
    std::vector<pid_t> family = descendants(app.pid());
    family.insert(family.begin(), app.pid());
    pid_t owner = listener_owner(port, family);
    REQUIRE(owner != 0);
    if (gate == "handoff") {
      CHECK_MESSAGE(owner != app.pid(), "the launcher holds the public port in handoff mode");
    } else {
      CHECK(owner == app.pid());  // the proxy really is a hop: the check can tell them apart
    }
    app.signal(SIGTERM);
    REQUIRE(app.wait_exit(5s));
  }
}

// ---- adaptive warm-up, --warm-path auto, background warming ------------------------------------

namespace {

namespace json = boost::json;

json::value startup_of(int admin_port) {
  auto r = http_get(admin_port, "/startup", 2s);
  if (r.status != 200) return json::value();
  json::error_code ec;
  auto v = json::parse(r.body, ec);
  return ec ? json::value() : v;
}

// Polls /startup until background warming reports `state` (done/off); the last document.
json::value wait_background(int admin_port, std::string_view state, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  json::value last;
  while (Clock::now() < deadline) {
    last = startup_of(admin_port);
    if (const auto* o = last.if_object()) {
      if (const auto* bg = o->if_contains("background");
          bg != nullptr && bg->is_object() && bg->as_object().at("state") == state.data()) {
        return last;
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

bool background_done(const json::value& startup) {
  return startup.is_object() && startup.at("background").at("state") == "done";
}

std::vector<std::string> warm_paths_in(const json::value& startup, bool background) {
  std::vector<std::string> out;
  if (!startup.is_object()) return out;
  for (const auto& w : startup.at("warm_paths").as_array()) {
    if (w.at("background").as_bool() == background) {
      out.emplace_back(w.at("path").as_string());
    }
  }
  return out;
}

std::vector<std::string> auto_argv(int admin_port, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {launcher_bin(), "--admin-port", std::to_string(admin_port)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--");
  argv.push_back(node_bin());
  argv.push_back(fixture_server());
  return argv;
}

}  // namespace

TEST_CASE(
    "--warm-path auto behind queue-proxy: background warming covers every fixture route, and "
    "each answers its next request (its ratio to steady printed)") {
  int app_port = free_port();
  int admin_port = free_port();
  QueueProxy qp(app_port, "tcp");
  REQUIRE_MESSAGE(qp.wait_up(10s), "queue-proxy did not start\n" << qp.proc().report());
  // No --warm-path: auto is the default for a Next.js standalone app.
  Proc app("knext-launch", auto_argv(admin_port, {"--warm-timeout", "60s"}),
           {.env = app_env(app_port), .cwd = fixture_dir()});
  auto ready = wait_activator_ready(qp.port(), app.started(), 40s);
  REQUIRE_MESSAGE(ready.ready, "queue-proxy never reported ready\n" << app.report());

  // The first user request after ready runs the middleware (proxy.js) warm, like the page.
  auto first = http_get(qp.port(), "/", 10s);
  REQUIRE_MESSAGE(first.status == 200, describe(first));
  CHECK_MESSAGE(contains(first.head, "x-fixture-proxy: 1"), first.head);

  auto done = wait_background(admin_port, "done", 60s);
  REQUIRE_MESSAGE(background_done(done), "background warming did not finish\n"
                                             << json::serialize(done) << "\n"
                                             << app.report());
  // Critical (/ and what a --prewarm record marks) or background: every route is warmed.
  auto background = warm_paths_in(done, true);
  auto critical = warm_paths_in(done, false);
  background.insert(background.end(), critical.begin(), critical.end());
  for (const char* route : {"/dynamic", "/slow", "/list", "/api/checksum", "/api/health", "/legacy",
                            "/posts/hello", "/posts/world", "/search"}) {
    CHECK_MESSAGE(std::find(background.begin(), background.end(), route) != background.end(),
                  route << " was not warmed in the background: " << json::serialize(done));
  }
  CHECK_MESSAGE(!contains(json::serialize(done), "/users/[id]"), json::serialize(done));

  // Behind queue-proxy for every route (it is in front of all user traffic anyway). Each route's
  // next request follows requests to the other routes, as a user's does in a live pod; so are its
  // steady ones: round after round over all routes, never the same route back to back.
  const std::vector<std::string> routes{"/dynamic",      "/slow",          "/list",
                                        "/api/checksum", "/api/health",    "/legacy",
                                        "/posts/hello",  "/search?q=knext"};
  // `/` (warm since before the gate, checked above) first: the request after the pause of
  // polling /startup pays for that pause (queue-proxy's idle connection, cold CPU caches),
  // whichever route it is, and that is not what this test measures.
  REQUIRE(http_get(qp.port(), "/", 10s).status == 200);
  std::map<std::string, double> next_ms;
  for (const auto& route : routes) {
    auto next = http_get(qp.port(), route, 10s);
    REQUIRE_MESSAGE(next.status == 200, route << ": " << describe(next));
    CHECK_MESSAGE(contains(next.head, "x-fixture-proxy: 1"), route << ": " << next.head);
    next_ms[route] = next.ms;
  }
  std::map<std::string, std::vector<double>> steady;
  for (int i = 0; i < 7; ++i) {
    for (const auto& route : routes) {
      auto s = http_get(qp.port(), route, 10s);
      REQUIRE_MESSAGE(s.status == 200, route << ": " << describe(s));
      steady[route].push_back(s.ms);
    }
  }
  for (const auto& route : routes) {
    MESSAGE(route << ": next after background warming "
                  << ratio_text(next_ms[route], median(steady[route])));
  }
}

TEST_CASE("--warm-path auto: a user request during background warming is answered") {
  int port = free_port();
  int admin_port = free_port();
  Proc app("knext-launch", auto_argv(admin_port, {}), {.env = app_env(port), .cwd = fixture_dir()});
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 30s), app.report());
  // Right after the gate opened, background warming runs (it takes several renders): the premise
  // of this test, so it is asserted, not just printed.
  auto running = startup_of(admin_port);
  REQUIRE(running.is_object());
  std::string state(running.at("background").at("state").as_string());
  REQUIRE_MESSAGE(state == "running",
                  "background warming was '"
                      << state << "' before the user request: " << json::serialize(running) << "\n"
                      << app.report());
  auto user = http_get(port, "/dynamic", 10s);
  CHECK_MESSAGE(user.status == 200, describe(user));
  CHECK(contains(user.body, "knext fixture: dynamic"));
  auto after = startup_of(admin_port);
  REQUIRE(after.is_object());
  MESSAGE("background warming was 'running' when the user request was sent, '"
          << std::string(after.at("background").at("state").as_string())
          << "' when it was answered (" << fixed1(user.ms) << " ms)");
  auto done = wait_background(admin_port, "done", 60s);
  CHECK_MESSAGE(background_done(done), app.report());
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s));
}

// The launcher tells the warm-up worker "busy"/"idle" for every user request until the worker's
// stdout closes, so lines keep arriving while the worker finishes. Its command reader once
// outlived the state it writes (a detached thread): the ASan run of this suite reports that as a
// stack-use-after-return in the worker, whose exit status the debug log then shows as non-zero.
TEST_CASE("--warm-path auto: the warm-up worker exits cleanly while user requests keep coming") {
  int port = free_port();
  int admin_port = free_port();
  Proc app("knext-launch", auto_argv(admin_port, {"--log-level", "debug"}),
           {.env = app_env(port), .cwd = fixture_dir()});
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 30s), app.report());
  std::atomic<bool> stop{false};
  int sent = 0;
  std::vector<std::string> failures;
  std::thread users([&] {
    for (int i = 0; !stop; ++i) {
      auto r = http_get(port, i % 2 == 0 ? "/dynamic" : "/", 10s);
      ++sent;
      if (r.status != 200) failures.push_back(describe(r));
    }
  });
  bool background_done = app.wait_for_err("phase background-warm-done", 60s);
  // The worker exits right after its last report: keep requests coming across that.
  bool reaped = app.wait_for_err("reaped pid", 5s);
  std::this_thread::sleep_for(300ms);
  stop = true;
  users.join();
  CHECK_MESSAGE(background_done, app.report());
  CHECK_MESSAGE(reaped, app.report());
  CHECK(sent > 0);
  CHECK_MESSAGE(failures.empty(), failures.size() << " of " << sent << " failed, first: "
                                                  << (failures.empty() ? "" : failures.front()));
  std::istringstream log(app.err());
  for (std::string line; std::getline(log, line);) {
    if (contains(line, "reaped pid")) CHECK_MESSAGE(contains(line, "exited with code 0"), line);
  }
  MESSAGE(sent << " user requests while background warming ended and the worker exited");
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s) == 128 + SIGTERM);
}

TEST_CASE("--warm-skip: matching routes are never warmed") {
  int port = free_port();
  int admin_port = free_port();
  Proc app("knext-launch",
           auto_argv(admin_port, {"--warm-skip", "/posts/**", "--warm-skip", "/slow"}),
           {.env = app_env(port), .cwd = fixture_dir()});
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 30s), app.report());
  auto done = wait_background(admin_port, "done", 60s);
  REQUIRE_MESSAGE(done.is_object(), app.report());
  auto all = warm_paths_in(done, true);
  auto critical = warm_paths_in(done, false);
  all.insert(all.end(), critical.begin(), critical.end());
  CHECK_MESSAGE(std::find(all.begin(), all.end(), "/dynamic") != all.end(), json::serialize(done));
  for (const char* skipped : {"/posts/hello", "/posts/world", "/slow"}) {
    CHECK_MESSAGE(std::find(all.begin(), all.end(), skipped) == all.end(),
                  skipped << " was warmed: " << json::serialize(done));
  }
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s));
}

TEST_CASE(
    "--warm-gate=first (the default) behind queue-proxy: ready once the first warm path is warm; "
    "the others are warmed right after the gate (their next request's ratio to steady printed)") {
  int app_port = free_port();
  int admin_port = free_port();
  QueueProxy qp(app_port, "tcp");
  REQUIRE_MESSAGE(qp.wait_up(10s), "queue-proxy did not start\n" << qp.proc().report());
  Proc app("knext-launch",
           auto_argv(admin_port, {"--warm-path", "/list", "--warm-path", "/slow", "--warm-path",
                                  "/dynamic", "--warm-timeout", "60s"}),
           {.env = app_env(app_port), .cwd = fixture_dir()});
  auto ready = wait_activator_ready(qp.port(), app.started(), 40s);
  REQUIRE_MESSAGE(ready.ready, "queue-proxy never reported ready\n" << app.report());
  // A user request the moment the pod is ready, while the other paths wait to be warmed.
  auto user = http_get(qp.port(), "/slow", 10s);
  CHECK_MESSAGE(user.status == 200, describe(user));
  CHECK(contains(user.body, "knext fixture: slow"));

  auto done = wait_background(admin_port, "done", 60s);
  REQUIRE_MESSAGE(background_done(done), json::serialize(done) << "\n" << app.report());
  // The launcher's log: /list done before the gate opened, /slow and /dynamic after it.
  std::string log = app.err();
  auto at = [&](const std::string& text) { return log.find(text); };
  auto gate_open = at("phase gate-open");
  REQUIRE_MESSAGE(gate_open != std::string::npos, log);
  CHECK_MESSAGE(at("(/list -> 200") < gate_open, log);
  for (const char* path : {"/slow", "/dynamic"}) {
    auto line = at(std::string("(") + path + " -> 200");
    REQUIRE_MESSAGE(line != std::string::npos, path << " was never warmed\n" << log);
    CHECK_MESSAGE(line > gate_open, log);
    CHECK_MESSAGE(log.find("after the gate", line) < log.find('\n', line), log);
  }
  // /startup: they stay critical paths (not background routes) that never held the gate.
  for (const auto& w : done.at("warm_paths").as_array()) {
    if (w.at("path") != "/slow" && w.at("path") != "/dynamic") continue;
    CHECK_MESSAGE(!w.at("background").as_bool(), json::serialize(w));
    CHECK_MESSAGE(!w.at("holds_gate").as_bool(), json::serialize(w));
    CHECK_MESSAGE(w.at("state") == "ok", json::serialize(w));
  }

  // /dynamic had no user request: only the warm-up after the gate rendered it. /list first
  // takes the pause of polling /startup (see the auto test above; after a pause of seconds the
  // allocation-heavy /list itself takes ~2x steady once, warm or not).
  REQUIRE(http_get(qp.port(), "/list", 10s).status == 200);
  auto next = http_get(qp.port(), "/dynamic", 10s);
  REQUIRE_MESSAGE(next.status == 200, describe(next));
  std::vector<double> steady;
  for (int i = 0; i < 7; ++i) {
    REQUIRE(http_get(qp.port(), "/list", 10s).status == 200);
    auto s = http_get(qp.port(), "/dynamic", 10s);
    REQUIRE_MESSAGE(s.status == 200, describe(s));
    steady.push_back(s.ms);
  }
  MESSAGE("--warm-gate=first: ready " << fixed1(ready.ms) << " ms after spawn; user /slow at ready "
                                      << fixed1(user.ms) << " ms; /dynamic after warming "
                                      << ratio_text(next.ms, median(steady)));
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s));
}

TEST_CASE("a 404 warm path is logged at once with its status and does not hold PORT closed") {
  int port = free_port();
  // The fixture answers 404 for a page it does not have.
  Proc app("knext-launch",
           launcher_argv({"--warm-path", "/no-such-page", "--warm-timeout", "60s"},
                         {node_bin(), fixture_server()}),
           {.env = app_env(port), .cwd = fixture_dir()});
  REQUIRE_MESSAGE(app.wait_for_err("phase server-listening-internal", 30s), app.report());
  auto held = watch_port_closed(app, port, "warm path /no-such-page answered HTTP 404", 30s);
  CHECK_MESSAGE(held.line_seen, app.report());
  CHECK_MESSAGE(held.accepted_early == 0, app.report());
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 10s), app.report());
  CHECK(app.running());  // not held for --warm-timeout (60 s): the 404 line ended the watch
  auto err = app.err();
  CHECK_MESSAGE(contains(err, "warm-up failed: /no-such-page (HTTP 404)"), err);
  auto root = http_get(port, "/", 10s);
  CHECK_MESSAGE(root.status == 200, describe(root));
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s));
}

// The fixture has no route that fails, so this app is a stand-in: status-server.cjs (GET /broken
// answers 500) with the two files that make a directory a Next.js standalone build to the
// launcher, and an app-paths manifest in Next's format listing / and /broken.
TEST_CASE("--warm-path auto: a route answering 500 in the background is logged, never blocks") {
  TempDir dir;
  fs::create_directories(dir.path() / ".next" / "server");
  fs::copy_file(status_server(), dir.path() / "server.js");
  fs::copy_file(fs::path(status_server()).parent_path() / "work.cjs", dir.path() / "work.cjs");
  {
    std::ofstream(dir.path() / ".next" / "BUILD_ID") << "stand-in-build";
    std::ofstream(dir.path() / ".next" / "server" / "app-paths-manifest.json")
        << R"({"/page":"app/page.js","/broken/page":"app/broken/page.js",)"
           R"("/fine/page":"app/fine/page.js"})";
  }
  int port = free_port();
  int admin_port = free_port();
  std::vector<std::string> argv = {
      launcher_bin(), "--admin-port", std::to_string(admin_port),         "--warm-fail", "exit",
      "--",           node_bin(),     (dir.path() / "server.js").string()};
  Proc app("knext-launch", argv, {.env = app_env(port), .cwd = dir.path()});
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 30s), app.report());
  auto done = wait_background(admin_port, "done", 30s);
  REQUIRE_MESSAGE(background_done(done), app.report());
  auto err = app.err();
  CHECK_MESSAGE(contains(err, "background warm-up of /broken answered HTTP 500"), err);
  CHECK(app.running());  // --warm-fail=exit is about critical paths only
  auto fine = http_get(port, "/fine", 5s);
  CHECK_MESSAGE(fine.status == 200, describe(fine));
  bool fine_warmed = false;
  for (const auto& w : done.at("warm_paths").as_array()) {
    if (w.at("path") == "/fine") fine_warmed = w.at("state") == "ok";
    if (w.at("path") == "/broken") CHECK(w.at("status").as_int64() == 500);
  }
  CHECK_MESSAGE(fine_warmed, json::serialize(done));
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s));
}

// Next 16 preloads every route's modules at start (preloadEntriesOnStart, on by default). Under
// the handoff gate the hook holds that back until the gate is open, then the launcher asks for
// it and writes the caches again once it and background warming are done.
TEST_CASE("--next-preload=defer: Next's preload runs after the gate opens, then a late flush") {
  int port = free_port();
  int admin_port = free_port();
  TempDir cache;
  Proc app("knext-launch",
           auto_argv(admin_port, {"--log-level", "debug", "--cache-dir", cache.path().string()}),
           {.env = app_env(port), .cwd = fixture_dir()});
  REQUIRE_MESSAGE(app.wait_for_err("phase next-preload-done", 60s), app.report());
  REQUIRE_MESSAGE(app.wait_for_err("node flushed its compile cache again", 60s), app.report());
  std::string log = app.err();
  auto deferred = log.find("phase next-preload-deferred");
  auto open = log.find("phase gate-open");
  auto done = log.find("phase next-preload-done");
  REQUIRE(deferred != std::string::npos);
  REQUIRE(open != std::string::npos);
  CHECK_MESSAGE(deferred < open, app.report());
  CHECK_MESSAGE(open < done, app.report());
  // Every page and route handler of the build was loaded: the count is the manifests' entries.
  size_t routes = 0;
  for (const char* manifest : {"app-paths-manifest.json", "pages-manifest.json"}) {
    std::ifstream in(fixture_dir() / ".next" / "server" / manifest);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    routes += json::parse(text).as_object().size();
  }
  CHECK_MESSAGE(contains(log, "(" + std::to_string(routes) + " routes loaded in"), app.report());
  CHECK_MESSAGE(!contains(log, "hook: "), app.report());  // no hook error
  auto user = http_get(port, "/list", 10s);
  CHECK_MESSAGE(user.status == 200, describe(user));
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s) == 128 + SIGTERM);
}

TEST_CASE("--next-preload=next: Next preloads as it ships, nothing is held back") {
  int port = free_port();
  int admin_port = free_port();
  Proc app("knext-launch", auto_argv(admin_port, {"--next-preload", "next"}),
           {.env = app_env(port), .cwd = fixture_dir()});
  REQUIRE_MESSAGE(app.wait_for_err("phase gate-open", 30s), app.report());
  auto user = http_get(port, "/dynamic", 10s);
  CHECK_MESSAGE(user.status == 200, describe(user));
  app.signal(SIGTERM);
  CHECK(app.wait_exit(10s) == 128 + SIGTERM);
  CHECK_MESSAGE(!contains(app.err(), "next-preload"), app.report());
}

// ---- --learn-paths: warm-up learned from traffic ---------------------------------------------

namespace {

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
    Proc first("knext-launch", auto_argv(admin, flags),
               {.env = app_env(port), .cwd = fixture_dir()});
    // Background warming and the late flush done: every warm-up request is behind us.
    auto done = wait_background(admin, "done", 90s);
    REQUIRE_MESSAGE(done.is_object(), first.report());
    REQUIRE_MESSAGE(done.at("warm_paths").as_array().at(0).at("path") == "/",
                    json::serialize(done));
    for (int i = 0; i < 4; ++i) {
      auto r = http_get(port, "/posts/hello?ref=" + std::to_string(i), 10s);
      REQUIRE_MESSAGE(r.status == 200, first.report());
    }
    REQUIRE(http_get(port, "/", 10s).status == 200);
    REQUIRE(http_get(port, "/users/7", 10s).status == 200);  // dynamic, no manifest lists it
    first.signal(SIGTERM);
    REQUIRE_MESSAGE(first.wait_exit(30s).has_value(), first.report());
    CHECK_MESSAGE(contains(first.report(), "learned paths: saved"), first.report());
    MESSAGE("first start:\n" << lines_with(first.report(), "learned paths"));
  }
  auto record = find_record(volume.path());
  REQUIRE_MESSAGE(record.has_value(), "no knext-traffic on the volume");
  std::string text = read_file(*record);
  MESSAGE("record:\n" << text);
  CHECK(contains(text, "\t/posts/[slug]\t4\t/posts/hello\n"));
  CHECK(contains(text, "\t/users/[id]\t1\t/users/7\n"));
  CHECK_FALSE(contains(text, "ref="));  // never the query
  const auto mode = fs::status(*record).permissions() & fs::perms::all;
  CHECK(mode == (fs::perms::owner_read | fs::perms::owner_write));

  int port = free_port();
  int admin = free_port();
  Proc second("knext-launch", auto_argv(admin, flags),
              {.env = app_env(port), .cwd = fixture_dir()});
  auto done = wait_background(admin, "done", 90s);
  REQUIRE_MESSAGE(done.is_object(), second.report());
  const auto& paths = done.at("warm_paths").as_array();
  const auto& top = paths.at(0).as_object();
  CHECK_MESSAGE(top.at("path") == "/posts/hello", json::serialize(done));
  CHECK(top.at("background") == false);
  CHECK(top.at("state") == "ok");
  std::string log = second.report();
  MESSAGE("second start:\n"
          << lines_with(log, "learned paths") << lines_with(log, "phase warm-path-done")
          << lines_with(log, "phase gate-open"));
  size_t warmed = log.find("phase warm-path-done");
  size_t gate = log.find("phase gate-open");
  REQUIRE_MESSAGE(warmed != std::string::npos, log);
  REQUIRE_MESSAGE(gate != std::string::npos, log);
  CHECK_MESSAGE(warmed < gate, log);
  CHECK_MESSAGE(
      contains(log.substr(warmed, log.find('\n', warmed) - warmed), "/posts/hello -> 200"), log);
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
    Proc first("knext-launch", auto_argv(admin, flags),
               {.env = app_env(port), .cwd = fixture_dir()});
    REQUIRE_MESSAGE(wait_background(admin, "done", 90s).is_object(), first.report());
    REQUIRE(http_get(port, "/list", 10s).status == 200);
    first.signal(SIGTERM);
    REQUIRE_MESSAGE(first.wait_exit(30s).has_value(), first.report());
  }
  auto record = find_record(volume.path());
  REQUIRE_MESSAGE(record.has_value(), "no knext-traffic on the volume");
  REQUIRE(contains(read_file(*record), "\t/list\n"));

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
    Proc app("knext-launch", auto_argv(admin, flags), {.env = app_env(port), .cwd = fixture_dir()});
    auto done = wait_background(admin, "done", 90s);
    REQUIRE_MESSAGE(done.is_object(), app.report());
    std::string ignored = lines_with(app.report(), "learned paths: record ignored");
    CHECK_MESSAGE(std::count(ignored.begin(), ignored.end(), '\n') == 1, app.report());
    CHECK_MESSAGE(contains(ignored, bad.logged), ignored);
    CHECK(done.at("warm_paths").as_array().at(0).at("path") == "/");
    CHECK(http_get(port, "/list", 10s).status == 200);
  }
}
