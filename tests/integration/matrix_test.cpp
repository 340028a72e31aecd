// The compatibility-matrix apps (tests/fixtures/matrix, scripts/setup-matrix-apps.sh) under
// knext-launch as PID 1 with default flags, against plain `node server.js` on the same build:
// the gate opens with the critical path the build's shape calls for warm (none failed), and
// every route answers the same status and middleware header either way. scripts/test.sh runs
// this in a fresh network namespace: the app listens on 3000 and the admin port is its default
// 9901, as in a pod.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>
#include <optional>
#include <thread>

#include "common/loopback.hpp"
#include "probes/warm/critical_path.hpp"
#include "probes/warm/route_discovery.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/source_tree.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace knext::test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kAppPort = 3000;
constexpr int kAdminPort = 9901;  // the launcher's default

struct App {
  std::string name;
  std::string root;                   // the critical path that holds the gate: `/` as served
  std::string renderer;               // then the per-request page the rule picks for this build
  std::vector<std::string> requests;  // every route, and paths that are not routes
  std::string middleware_header;      // "name: value" as the app's middleware sets it
};

const std::vector<App>& apps() {
  static const std::vector<App> all = {
      {"next14-pages",
       "/",
       "/ssr",
       {"/", "/ssr", "/ssr?q=1", "/isr", "/posts/7", "/posts/x", "/api/hello", "/nowhere"},
       "x-matrix-middleware: next14-pages"},
      {"next15-basepath",
       "/shop",
       "/shop/search",
       {"/shop", "/shop/about", "/shop/search?q=knext", "/shop/items/42", "/shop/api/ping", "/",
        "/about", "/shop/nowhere"},
       "x-matrix-middleware: next15-basepath"},
  };
  return all;
}

fs::path standalone(const App& app) {
  return kRoot / "tests" / "fixtures" / "matrix" / app.name / ".next" / "standalone";
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

struct Answer {
  int status = 0;
  std::string head;  // lower-cased status line and headers
  std::string body;
  std::string error;
};

// One GET over a fresh connection (Connection: close), read to EOF.
Answer get(int port, const std::string& path, std::chrono::milliseconds timeout = 10s) {
  Answer a;
  auto deadline = Clock::now() + timeout;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = knext::loopback_address(port);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    a.error = std::string("connect: ") + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return a;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUser-Agent: knext-matrix-test\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    a.error = "send failed";
    ::close(fd);
    return a;
  }
  std::string raw;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      a.error = "timed out";
      break;
    }
    char buf[16384];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || std::sscanf(raw.c_str(), "HTTP/1.%*d %d", &a.status) != 1) {
    if (a.error.empty()) a.error = "no HTTP response";
    a.status = 0;
    return a;
  }
  a.head = raw.substr(0, end);
  std::transform(a.head.begin(), a.head.end(), a.head.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  a.body = raw.substr(end + 4);
  return a;
}

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = knext::loopback_address(port);
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

std::map<std::string, std::string> app_env() {
  return {{"PORT", std::to_string(kAppPort)},
          {"HOSTNAME", "127.0.0.1"},
          {"NEXT_TELEMETRY_DISABLED", "1"},
          {"PATH", (kRoot / ".deps" / "node" / "bin").string() + ":/usr/bin:/bin"}};
}

// Plain `node server.js` in the app's standalone directory, stopped at scope exit.
class PlainNode {
 public:
  explicit PlainNode(const App& app) {
    bp::environment env = boost::this_process::environment();
    for (const auto& entry : std::vector<std::string>{"NODE_OPTIONS", "NODE_COMPILE_CACHE"}) {
      env.erase(entry);
    }
    for (const auto& [k, v] : app_env()) env[k] = v;
    child_ = bp::child(bp::exe = node_bin(), bp::args = std::vector<std::string>{"server.js"}, env,
                       bp::std_out > (dir_.path() / "out").string(),
                       bp::std_err > (dir_.path() / "err").string(),
                       bp::start_dir = standalone(app).string());
  }
  ~PlainNode() {
    std::error_code ec;
    if (child_.running(ec)) {
      ::kill(child_.id(), SIGKILL);
      child_.wait(ec);
    }
  }
  PlainNode(const PlainNode&) = delete;
  PlainNode& operator=(const PlainNode&) = delete;
  std::string log() const { return read_file(dir_.path() / "err"); }

 private:
  TempDir dir_;
  bp::child child_;
};

json::value startup() {
  auto r = get(kAdminPort, "/startup", 2s);
  json::error_code ec;
  auto v = r.status == 200 ? json::parse(r.body, ec) : json::value();
  return ec ? json::value() : v;
}

double phase_ms(const json::value& doc, const std::string& name) {
  for (const auto& p : doc.at("phases").as_array()) {
    if (p.at("name").as_string() == name) return p.at("ms").to_number<double>();
  }
  return -1;
}

// The critical (not background) entry of /startup for `path`, or null.
const json::object* critical_entry(const json::value& doc, const std::string& path) {
  for (const auto& w : doc.at("warm_paths").as_array()) {
    const auto& o = w.as_object();
    if (!o.at("background").as_bool() && o.at("path").as_string() == path) return &o;
  }
  return nullptr;
}
// Default flags as PID 1 warm the critical paths the build calls for, and every route answers as
// under plain node.
void check_app(const App& app) {
  CAPTURE(app.name);
  REQUIRE_MESSAGE(fs::exists(standalone(app) / "server.js"),
                  "build the matrix apps first (scripts/setup-matrix-apps.sh)");
  // The premise: `/` is prerendered, so `/` alone would load no per-request renderer, and the
  // rule adds this build's per-request page after it.
  auto found = knext::discover_routes(standalone(app));
  REQUIRE_MESSAGE(found.ok(), (found.ok() ? "" : found.error().message));
  auto root = std::find_if(found->routes.begin(), found->routes.end(),
                           [](const auto& r) { return r.route == "/"; });
  REQUIRE(root != found->routes.end());
  CHECK_FALSE(root->per_request);
  CHECK(knext::auto_critical_paths(*found) == std::vector<std::string>{app.root, app.renderer});

  std::map<std::string, Answer> plain;
  {
    PlainNode node(app);
    REQUIRE_MESSAGE(eventually([] { return accepts(kAppPort); }, 30s), node.log());
    for (const auto& path : app.requests) plain[path] = get(kAppPort, path);
  }
  REQUIRE(eventually([] { return !accepts(kAppPort); }, 10s));

  LaunchOptions options;
  options.cwd = standalone(app).string();
  options.env = app_env();
  Launched launched({}, options);  // default flags, default command: node server.js
  REQUIRE_MESSAGE(launched.wait_for_err("phase gate-open", 60s), launched.err());
  auto doc = startup();
  REQUIRE_MESSAGE(doc.is_object(), launched.err());
  double gate_open = phase_ms(doc, "gate-open");
  CHECK(gate_open > 0);
  const json::object* first = nullptr;
  for (const auto& w : doc.at("warm_paths").as_array()) {
    const auto& o = w.as_object();
    CHECK_MESSAGE(o.at("state") != "failed", json::serialize(o));
    if (!first && !o.at("background").as_bool()) first = &o;
  }
  REQUIRE_MESSAGE(first != nullptr, json::serialize(doc));
  // `/` as the app serves it held the gate and was warm before it opened.
  CHECK(std::string(first->at("path").as_string()) == app.root);
  CHECK_MESSAGE(first->at("state") == "ok", json::serialize(*first));
  CHECK_MESSAGE(first->at("status").to_number<int>() == 200, json::serialize(*first));
  CHECK_MESSAGE(first->at("ms").to_number<double>() <= gate_open, json::serialize(doc));
  // The per-request page is a critical path too, warmed right after the gate.
  json::value later;
  bool renderer_warm = eventually(
      [&] {
        later = startup();
        const json::object* e = later.is_object() ? critical_entry(later, app.renderer) : nullptr;
        return e != nullptr && e->at("state") == "ok";
      },
      30s);
  CHECK_MESSAGE(renderer_warm, json::serialize(later) << "\n" << launched.err());
  if (renderer_warm) {
    CHECK(critical_entry(later, app.renderer)->at("status").to_number<int>() == 200);
    for (const auto& w : later.at("warm_paths").as_array()) {
      CHECK_MESSAGE(w.at("state") != "failed", json::serialize(w));
    }
  }
  CHECK_MESSAGE(contains(launched.err(), "critical paths " + app.root + " " + app.renderer),
                launched.err());
  CHECK_MESSAGE(!contains(launched.err(), "warm-up failed"), launched.err());
  CHECK_MESSAGE(!contains(launched.err(), "(definitive)"), launched.err());

  for (const auto& path : app.requests) {
    CAPTURE(path);
    auto knext = get(kAppPort, path);
    const auto& node = plain[path];
    REQUIRE_MESSAGE(node.status != 0, node.error);
    CHECK_MESSAGE(knext.status == node.status, knext.error);
    bool node_tagged = contains(node.head, app.middleware_header);
    CHECK(contains(knext.head, app.middleware_header) == node_tagged);
    // The premise that the middleware runs at all (Next 15 skips it for the bare basePath).
    if (path == app.renderer) CHECK(node_tagged);
  }
  launched.send(SIGTERM);
  auto done = launched.wait(15s);
  CHECK_MESSAGE((done.exit_code == 0 || done.exit_code == 128 + SIGTERM), done.err);
  // No warning beyond the documented one for a container run as root (README "Hardening").
  for (const auto& line : lines(done.err)) {
    if (line.starts_with("knext-launch ") && contains(line, " warning: ")) {
      CHECK_MESSAGE(contains(line, "the app runs as root"), line);
    }
  }
}

}  // namespace

TEST_CASE("matrix: next14-pages (Pages Router, static /) under the launcher as under plain node") {
  check_app(apps().at(0));
}

TEST_CASE("matrix: next15-basepath (App Router, basePath /shop) under the launcher as under node") {
  check_app(apps().at(1));
}
