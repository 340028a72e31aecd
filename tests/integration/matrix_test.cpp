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
  std::string dir;                    // the app's source directory, from the repo root
  std::string root;                   // the critical path that holds the gate: `/` as served
  std::string renderer;               // then the per-request page the rule picks for this build
  std::vector<std::string> requests;  // every route, and paths that are not routes
  std::string middleware_header;      // "name: value" as the app's middleware sets it
};

const std::vector<App>& apps() {
  static const std::vector<App> all = {
      {"next14-pages",
       "tests/fixtures/matrix/next14-pages",
       "/",
       "/ssr",
       {"/", "/ssr", "/ssr?q=1", "/isr", "/posts/7", "/posts/x", "/api/hello", "/nowhere"},
       "x-matrix-middleware: next14-pages"},
      {"next15-basepath",
       "tests/fixtures/matrix/next15-basepath",
       "/shop",
       "/shop/search",
       {"/shop", "/shop/about", "/shop/search?q=knext", "/shop/items/42", "/shop/api/ping", "/",
        "/about", "/shop/nowhere"},
       "x-matrix-middleware: next15-basepath"},
      {"next16-fixture",
       "tests/fixtures/next-app",
       "/",
       "/list",
       {"/", "/dynamic", "/list", "/search?q=a", "/posts/hello", "/users/7", "/legacy",
        "/api/health", "/api/checksum", "/nowhere"},
       "x-fixture-proxy: 1"},
  };
  return all;
}

fs::path standalone(const App& app) {
  return kRoot / app.dir / ".next" / "standalone";
}

// The Node versions of the matrix: the pinned 24 (.deps/node) and those
// scripts/setup-node-matrix.sh installs beside it.
struct Node {
  int major = 0;
  fs::path bin_dir;
};
std::vector<Node> node_versions() {
  std::vector<Node> out{{24, kRoot / ".deps" / "node" / "bin"}};
  for (int major : {20, 22, 26}) {
    out.push_back({major, kRoot / ".deps" / ("node-" + std::to_string(major)) / "bin"});
  }
  return out;
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

std::map<std::string, std::string> app_env(const Node& node) {
  return {{"PORT", std::to_string(kAppPort)},
          {"HOSTNAME", "127.0.0.1"},
          {"NEXT_TELEMETRY_DISABLED", "1"},
          {"PATH", node.bin_dir.string() + ":/usr/bin:/bin"}};
}

// Plain `node server.js` in the app's standalone directory, stopped at scope exit.
class PlainNode {
 public:
  PlainNode(const App& app, const Node& node) {
    bp::environment env = boost::this_process::environment();
    for (const auto& entry : std::vector<std::string>{"NODE_OPTIONS", "NODE_COMPILE_CACHE"}) {
      env.erase(entry);
    }
    for (const auto& [k, v] : app_env(node)) env[k] = v;
    child_ = bp::child(bp::exe = (node.bin_dir / "node").string(),
                       bp::args = std::vector<std::string>{"server.js"}, env,
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
void check_app(const App& app, const Node& node) {
  CAPTURE(app.name);
  CAPTURE(node.major);
  REQUIRE_MESSAGE(fs::exists(standalone(app) / "server.js"),
                  "build the matrix apps first (scripts/setup-matrix-apps.sh)");
  REQUIRE_MESSAGE(fs::exists(node.bin_dir / "node"),
                  "install the matrix's Node versions first (scripts/setup-node-matrix.sh)");
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
    PlainNode plain_node(app, node);
    REQUIRE_MESSAGE(eventually([] { return accepts(kAppPort); }, 30s), plain_node.log());
    for (const auto& path : app.requests) plain[path] = get(kAppPort, path);
  }
  REQUIRE(eventually([] { return !accepts(kAppPort); }, 10s));

  LaunchOptions options;
  options.cwd = standalone(app).string();
  options.env = app_env(node);
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
    const auto& by_node = plain[path];
    REQUIRE_MESSAGE(by_node.status != 0, by_node.error);
    CHECK_MESSAGE(knext.status == by_node.status, knext.error);
    bool node_tagged = contains(by_node.head, app.middleware_header);
    CHECK(contains(knext.head, app.middleware_header) == node_tagged);
    // The premise that the middleware runs at all (Next 15 skips it for the bare basePath).
    if (path == app.renderer) CHECK(node_tagged);
  }
  // Next's start banner names the public port, not the hook's internal one.
  CHECK_MESSAGE(
      contains(launched.out() + launched.err(), "http://127.0.0.1:" + std::to_string(kAppPort)),
      launched.out());
  // Node 20 has no compile cache API: said once, everything else works.
  CHECK(contains(launched.err(), "module.flushCompileCache is not available") == (node.major < 22));
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

void check_on_every_node(const App& app) {
  for (const auto& node : node_versions()) {
    MESSAGE(app.name << " on node " << node.major);
    check_app(app, node);
  }
}

}  // namespace

TEST_CASE("matrix: next14-pages (Pages Router, static /) on Node 20, 22, 24 and 26") {
  check_on_every_node(apps().at(0));
}

TEST_CASE("matrix: next15-basepath (App Router, basePath /shop) on Node 20, 22, 24 and 26") {
  check_on_every_node(apps().at(1));
}

TEST_CASE("matrix: the Next 16 fixture (App Router, proxy) on Node 20, 22, 24 and 26") {
  check_on_every_node(apps().at(2));
}
