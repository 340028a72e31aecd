// Network faults against the real launcher as PID 1 (unshare --pid --fork --mount-proc), in
// front of tests/fixtures/servers/status-server.cjs (or a small inline node server where a test
// needs a response no fixture sends), over real loopback sockets. Each test is bounded in
// connections and time. scripts/test.sh runs this binary in a fresh network namespace.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <thread>

#include "common/fd.hpp"
#include "common/loopback.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/netstat.hpp"
#include "tests/integration/source_tree.hpp"

namespace fs = std::filesystem;
using namespace knext::test;
using knext::Fd;
using Clock = std::chrono::steady_clock;

namespace {

std::string status_server() {
  return (kRoot / "tests" / "fixtures" / "servers" / "status-server.cjs").string();
}

int free_port() {
  auto port = knext::free_loopback_port();
  REQUIRE(port.ok());
  return *port;
}

std::map<std::string, std::string> app_env(int port) {
  return {{"PORT", std::to_string(port)}, {"HOSTNAME", "127.0.0.1"}};
}

// Raises this process's soft fd limit (the launcher inherits it) to at least `wanted`.
void raise_fd_limit(rlim_t wanted) {
  rlimit limit{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &limit) == 0);
  }
  REQUIRE_MESSAGE(limit.rlim_cur >= wanted,
                  "RLIMIT_NOFILE hard limit " << limit.rlim_max << " is below " << wanted);
}

long vm_rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A blocking TCP connection to loopback (127.0.0.1, or ::1 with ipv6); reads time out after
// `timeout` so a broken launcher fails a test instead of hanging it. Invalid on failure, errno set.
Fd connect_to(int port, bool ipv6 = false, std::chrono::seconds timeout = 10s) {
  Fd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc;
  if (ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    a.sin6_addr = in6addr_loopback;
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    auto a = knext::loopback_address(port);
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (rc != 0) {
    int saved = errno;
    fd.reset();
    errno = saved;
  }
  return fd;
}

bool send_all(const Fd& fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct Reply {
  int status = 0;  // 0: no answer
  std::string body;
  bool reset = false;    // ECONNRESET
  bool refused = false;  // the connect failed
  double ms = 0;
};

std::string request_for(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
}

// Reads one Connection: close response to EOF.
Reply read_reply(const Fd& fd) {
  Reply r;
  std::string raw;
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      continue;
    }
    r.reset = n < 0 && errno == ECONNRESET;
    break;
  }
  auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) == 0 && raw.size() > 12 && end != std::string::npos) {
    r.status = std::atoi(raw.c_str() + 9);
    r.body = raw.substr(end + 4);
  }
  return r;
}

Reply get(int port, const std::string& path, bool ipv6 = false) {
  auto start = Clock::now();
  Fd fd = connect_to(port, ipv6);
  Reply r;
  if (!fd.valid()) {
    r.refused = true;
  } else if (send_all(fd, request_for(path))) {
    r = read_reply(fd);
  }
  r.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return r;
}

bool wait_status(int port, const std::string& path, int status, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (get(port, path).status == status) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// True when this host can listen on ::1 (IPv6 may be off).
bool ipv6_loopback_usable() {
  Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

std::vector<std::string> launcher_args(const std::vector<std::string>& flags,
                                       const std::vector<std::string>& command) {
  std::vector<std::string> argv = flags;
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

// The cap the launcher logged for the proxy gate ("at most N connections").
size_t logged_proxy_cap(const std::string& err) {
  std::smatch m;
  std::regex re("at most ([0-9]+) connections");
  REQUIRE(std::regex_search(err, m, re));
  return std::stoul(m[1]);
}

}  // namespace

TEST_CASE("2,000 idle connections on the admin port: /healthz still answers, RSS bounded") {
  raise_fd_limit(4096);
  int port = free_port();
  int admin = free_port();
  Launched launcher(launcher_args({"--gate", "none", "--admin-port", std::to_string(admin)},
                                  {node_bin(), status_server()}),
                    {.env = app_env(port)});
  REQUIRE_MESSAGE(wait_status(admin, "/healthz", 200, 10s), launcher.err());
  pid_t pid = launcher.launcher_pid();
  std::vector<double> quiet;
  for (int i = 0; i < 20; ++i) quiet.push_back(get(admin, "/healthz").ms);
  long rss_before = vm_rss_kb(pid);

  constexpr int kIdle = 2000;
  std::vector<Fd> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.push_back(connect_to(admin));
    REQUIRE(idle.back().valid());
  }
  std::this_thread::sleep_for(300ms);  // past the admin server's eviction guard
  long rss_held = vm_rss_kb(pid);
  std::vector<double> loaded;
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    Reply r = get(admin, "/healthz");
    loaded.push_back(r.ms);
    if (r.status == 200 && r.body == "ok\n") ++answered;
  }
  CHECK(answered == 20);
  // The admin server holds at most 512 connections, a few KB each.
  constexpr long kRssCapKb = 24 * 1024;
  CHECK(rss_held < kRssCapKb);
  MESSAGE("admin, 2,000 idle connections: launcher VmRSS "
          << rss_before << " kB before, " << rss_held << " kB held; /healthz median "
          << median(quiet) << " ms quiet, " << median(loaded) << " ms loaded");
  idle.clear();
  launcher.send(SIGTERM);
  CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
}

TEST_CASE("1,000 probes a second on the admin and the public port during warm-up") {
  for (std::string gate : {"handoff", "proxy"}) {
    CAPTURE(gate);
    int port = free_port();
    int admin = free_port();
    Launched launcher(launcher_args({"--gate", gate, "--warm-path", "/work/2000", "--warm-timeout",
                                     "30s", "--admin-port", std::to_string(admin)},
                                    {node_bin(), status_server()}),
                      {.env = app_env(port)});
    REQUIRE_MESSAGE(launcher.wait_for_err("phase child-spawned", 5s), launcher.err());
    std::this_thread::sleep_for(100ms);  // the admin endpoint listens right after the spawn

    // Each prober paces itself at one probe a millisecond (fewer when a probe takes longer)
    // until the gate has been open for half a second, or 15 s at most.
    std::atomic<bool> stop{false};
    struct Tally {
      int sent = 0, answered = 0, other = 0;
      int before_open = 0, after_open = 0, flaps = 0;  // public port
    };
    Tally admin_tally, public_tally;
    auto pace = [&](auto probe) {
      auto next = Clock::now();
      auto deadline = next + 15s;
      while (!stop && Clock::now() < deadline) {
        probe();
        next += 1ms;
        std::this_thread::sleep_until(next);
      }
    };
    std::thread admin_prober([&] {
      pace([&] {
        ++admin_tally.sent;
        Reply r = get(admin, "/healthz");
        (r.status == 200 ? admin_tally.answered : admin_tally.other)++;
      });
    });
    std::thread public_prober([&] {
      bool opened = false;
      pace([&] {
        ++public_tally.sent;
        bool up;
        if (gate == "handoff") {  // queue-proxy's default TCP probe: up when the connect succeeds
          up = connect_to(port).valid();
        } else {  // an HTTP probe of the ready path: 503, then 200
          Reply r = get(port, "/_knext/ready");
          if (r.status != 200 && r.status != 503) ++public_tally.other;
          up = r.status == 200;
        }
        if (up) opened = true;
        (up ? public_tally.after_open : public_tally.before_open)++;
        if (opened && !up) ++public_tally.flaps;
      });
    });
    bool opened = launcher.wait_for_err("phase gate-open", 15s);
    std::this_thread::sleep_for(500ms);
    stop = true;
    admin_prober.join();
    public_prober.join();
    REQUIRE_MESSAGE(opened, launcher.err());
    CHECK(admin_tally.other == 0);  // /healthz answered 200 every time
    CHECK(public_tally.other == 0);
    CHECK(public_tally.flaps == 0);  // closed until warm, then open for good
    CHECK(public_tally.before_open > 0);
    CHECK(public_tally.after_open > 0);
    CHECK(get(port, "/after").body == "ok /after");
    MESSAGE(gate << ": " << admin_tally.sent << " admin probes, " << public_tally.sent
                 << " public probes (" << public_tally.before_open << " before open)");
    launcher.send(SIGTERM);
    CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
  }
}

TEST_CASE("proxy gate: 10,000 connections held before warm, RSS bounded, all released, 0 resets") {
  constexpr int kHeld = 10'000;
  raise_fd_limit(2 * kHeld);
  int port = free_port();
  Launched launcher(launcher_args({"--gate", "proxy", "--warm-path", "/work/8000", "--warm-timeout",
                                   "60s", "--admin-port", "0"},
                                  {node_bin(), status_server()}),
                    {.env = app_env(port)});
  REQUIRE_MESSAGE(launcher.wait_for_err("at most", 5s), launcher.err());
  size_t cap = logged_proxy_cap(launcher.err());
  REQUIRE(wait_status(port, "/_knext/ready", 503, 5s));
  pid_t pid = launcher.launcher_pid();
  long rss_before = vm_rss_kb(pid);

  std::vector<Fd> clients;
  for (int i = 0; i < kHeld; ++i) {
    clients.push_back(connect_to(port, false, 60s));
    REQUIRE(clients.back().valid());
    send_all(clients.back(), request_for("/held-" + std::to_string(i)));
  }
  std::this_thread::sleep_for(500ms);
  long rss_held = vm_rss_kb(pid);
  // Before open nothing is sent to a held connection: one already readable was closed at accept
  // (over the cap; with its request unread, that close is a reset).
  std::vector<bool> refused(kHeld, false);
  int closed_at_accept = 0;
  for (int i = 0; i < kHeld; ++i) {
    pollfd p{clients[i].get(), POLLIN, 0};
    refused[i] = ::poll(&p, 1, 0) == 1;
    closed_at_accept += refused[i] ? 1 : 0;
  }
  bool still_closed = launcher.err().find("phase gate-open") == std::string::npos;
  REQUIRE_MESSAGE(still_closed, "the gate opened before every connection was held");
  long overflows_before = listen_overflows();

  int answered = 0, resets = 0, wrong = 0;
  for (int i = 0; i < kHeld; ++i) {
    if (refused[i]) continue;
    Reply r = read_reply(clients[i]);
    clients[i].reset();
    if (r.status == 200 && r.body == "ok /held-" + std::to_string(i)) {
      ++answered;
    } else if (r.reset) {
      ++resets;
    } else {
      ++wrong;
    }
  }
  long rss_after = vm_rss_kb(pid);
  size_t expected = std::min<size_t>(cap, kHeld);
  CHECK(answered == static_cast<int>(expected));
  CHECK(closed_at_accept == kHeld - static_cast<int>(expected));
  CHECK(resets == 0);
  CHECK(wrong == 0);
  CHECK(listen_overflows() - overflows_before == 0);  // node's accept queue never overflowed
  // A held connection keeps its small head and its handles: about 1-2 KB.
  constexpr long kRssCapKb = 64 * 1024;
  CHECK(rss_held < kRssCapKb);
  CHECK(rss_after < kRssCapKb);
  MESSAGE("proxy, " << kHeld << " held (cap " << cap << "): launcher VmRSS " << rss_before
                    << " kB before, " << rss_held << " kB held, " << rss_after
                    << " kB after; answered " << answered << ", resets " << resets);
  launcher.send(SIGTERM);
  CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
}

TEST_CASE("proxy gate: a client that never reads a large response leaves memory bounded") {
  // 128 MiB in 1 MiB writes, each waiting for node's 'drain' as a well-behaved server does; it
  // reports how much it has handed to its socket.
  const std::string server = R"(
    const http = require('http');
    const chunk = Buffer.alloc(1 << 20, 120);
    const total = 128;
    let written = 0;
    http.createServer((req, res) => {
      if (req.url !== '/huge') return res.end('ok');
      res.writeHead(200, { 'content-length': total * chunk.length });
      let i = 0;
      const pump = () => {
        while (i < total) {
          i++;
          written += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
        res.end();
      };
      pump();
    }).listen(Number(process.env.PORT), process.env.HOSTNAME);
    setInterval(() => process.stdout.write('written ' + written + '\n'), 100);
  )";
  int port = free_port();
  Launched launcher(
      launcher_args({"--gate", "proxy", "--admin-port", "0"}, {node_bin(), "-e", server}),
      {.env = app_env(port)});
  REQUIRE_MESSAGE(launcher.wait_for_err("phase gate-open", 10s), launcher.err());
  pid_t pid = launcher.launcher_pid();
  long rss_before = vm_rss_kb(pid);
  auto written = [&] {
    static const std::regex re("written ([0-9]+)\n");
    std::string out = launcher.out();
    long last = 0;
    for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it) {
      last = std::stol((*it)[1]);
    }
    return last;
  };

  Fd client = connect_to(port, false, 30s);
  REQUIRE(client.valid());
  int small = 64 * 1024;  // the client's own buffer stays small, as a slow phone's would
  setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  REQUIRE(send_all(client, request_for("/huge")));
  // Wait until node has stopped making progress (backpressure reached it), at most 10 s.
  long last = -1;
  for (int i = 0; i < 50 && written() != last; ++i) {
    last = written();
    std::this_thread::sleep_for(200ms);
  }
  long stalled_at = written();
  long rss_stalled = vm_rss_kb(pid);
  constexpr long kTotal = 128L << 20;
  CHECK(stalled_at < kTotal / 4);  // node was made to wait: the proxy did not read it all
  constexpr long kRssCapKb = 24 * 1024;
  CHECK(rss_stalled < kRssCapKb);

  // Then the client reads: every byte arrives.
  size_t received = 0;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::recv(client.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    received += static_cast<size_t>(n);
  }
  CHECK(received > static_cast<size_t>(kTotal));  // the head plus the whole body
  CHECK(received < static_cast<size_t>(kTotal) + 1024);
  MESSAGE("proxy, unread 128 MiB response: node stalled at "
          << (stalled_at >> 20) << " MiB; launcher VmRSS " << rss_before << " kB before, "
          << rss_stalled << " kB stalled");
  launcher.send(SIGTERM);
  CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
}

TEST_CASE("the admin port taken: the launcher logs it and runs the app without the endpoint") {
  int port = free_port();
  int admin = free_port();
  Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(static_cast<uint16_t>(admin));
  REQUIRE(::bind(taken.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)) == 0);
  REQUIRE(::listen(taken.get(), 8) == 0);
  Launched launcher(launcher_args({"--gate", "none", "--admin-port", std::to_string(admin)},
                                  {node_bin(), status_server()}),
                    {.env = app_env(port)});
  CHECK_MESSAGE(launcher.wait_for_err("admin port " + std::to_string(admin) +
                                          ": address already in use; the admin endpoint is off",
                                      5s),
                launcher.err());
  CHECK(wait_status(port, "/still-serving", 200, 10s));
  launcher.send(SIGTERM);
  CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
}

TEST_CASE("--admin-host: every interface by default (IPv4 and IPv6), or just the one given") {
  if (!ipv6_loopback_usable()) {
    MESSAGE("no IPv6 loopback here: only the IPv4 side is checked");
  }
  bool v6 = ipv6_loopback_usable();
  for (std::string host : {"", "127.0.0.1"}) {
    CAPTURE(host);
    int port = free_port();
    int admin = free_port();
    std::vector<std::string> flags = {"--gate", "none", "--admin-port", std::to_string(admin)};
    if (!host.empty()) flags.insert(flags.end(), {"--admin-host", host});
    Launched launcher(launcher_args(flags, {node_bin(), status_server()}), {.env = app_env(port)});
    REQUIRE_MESSAGE(wait_status(admin, "/healthz", 200, 10s), launcher.err());
    if (v6) {
      Reply over_v6 = get(admin, "/healthz", true);
      if (host.empty()) {
        CHECK(over_v6.status == 200);
      } else {
        CHECK(over_v6.refused);
      }
    }
    launcher.send(SIGTERM);
    CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
  }
}

namespace {

// Sets this network namespace's ip_local_port_range for as long as it lives (scripts/test.sh
// runs this binary in a namespace of its own).
class LocalPortRange {
 public:
  LocalPortRange(int low, int high) {
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low_ >> high_;
    std::ofstream("/proc/sys/net/ipv4/ip_local_port_range") << low << " " << high << "\n";
    // The write took effect (it needs root in this network namespace), or the test shows nothing.
    int now_low = 0, now_high = 0;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> now_low >> now_high;
    REQUIRE_MESSAGE((now_low == low && now_high == high),
                    "ip_local_port_range is " << now_low << " " << now_high << ", not " << low
                                              << " " << high);
  }
  ~LocalPortRange() {
    std::ofstream("/proc/sys/net/ipv4/ip_local_port_range") << low_ << " " << high_ << "\n";
  }
  LocalPortRange(const LocalPortRange&) = delete;
  LocalPortRange& operator=(const LocalPortRange&) = delete;

 private:
  int low_ = 32768, high_ = 60999;
};

Fd bound_loopback(int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto addr = knext::loopback_address(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fd.reset();
  return fd;
}

}  // namespace

// PORT inside the ephemeral range: the hook holds the app on 127.0.0.1:0, and the kernel must
// never hand it PORT itself (the public listen would then fail). The kernel gives bind(0) odd
// ports first; with every other odd port of a small range taken, PORT is the only odd one left.
TEST_CASE("handoff with PORT in the ephemeral range: the app is never held on PORT itself") {
  constexpr int kLow = 40100, kHigh = 40111, kPort = 40101;
  std::vector<Fd> taken;
  for (int p = kPort + 2; p <= kHigh; p += 2) {
    taken.push_back(bound_loopback(p));
    REQUIRE_MESSAGE(taken.back().valid(), "port " << p << " is in use here");
  }
  REQUIRE(bound_loopback(kPort).valid());  // free now (that socket is closed again)
  LocalPortRange range(kLow, kHigh);
  {
    // The premise: a plain bind(0) on loopback, as the hook's is, now gets PORT itself.
    Fd any = bound_loopback(0);
    REQUIRE(any.valid());
    sockaddr_in got{};
    socklen_t len = sizeof got;
    REQUIRE(::getsockname(any.get(), reinterpret_cast<sockaddr*>(&got), &len) == 0);
    REQUIRE_MESSAGE(ntohs(got.sin_port) == kPort,
                    "bind(0) got " << ntohs(got.sin_port) << ", not PORT " << kPort);
  }
  Launched launcher(
      launcher_args({"--gate", "handoff", "--admin-port", "0"}, {node_bin(), status_server()}),
      {.env = app_env(kPort)});
  REQUIRE_MESSAGE(launcher.wait_for_err("phase gate-open", 15s), launcher.err());
  std::smatch m;
  std::string err = launcher.err();
  REQUIRE_MESSAGE(
      std::regex_search(err, m,
                        std::regex(R"(server-listening-internal at \S+ \(127\.0\.0\.1:(\d+)\))")),
      err);
  CHECK(std::stoi(m[1]) != kPort);
  CHECK(wait_status(kPort, "/after-open", 200, 10s));
  launcher.send(SIGTERM);
  CHECK(launcher.wait(10s).exit_code == 128 + SIGTERM);
}
