// The admin server on a real libuv loop in a background thread, driven by real sockets and
// libcurl over 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/uv_handle.hpp"
#include "probes/admin/admin_routes.hpp"
#include "probes/admin/admin_server.hpp"
#include "probes/http/curl_api.hpp"

using namespace std::chrono_literals;
using knext::AdminServer;
using knext::AdminServerOptions;
using knext::Fd;
using knext::HttpReply;
using knext::HttpRequestHead;

namespace {

using Clock = std::chrono::steady_clock;

// An AdminServer serving admin_route(state) (plus /throw, a handler that throws) on its own
// loop thread. The state is only touched on that thread: use on_loop().
class ServerThread {
 public:
  explicit ServerThread(AdminServerOptions options = {}) {
    timeline_.mark("config-parsed");
    state_.timeline = &timeline_;
    state_.gate_mode = "handoff";
    server_ = std::make_unique<AdminServer>(
        loop_.get(),
        [this](const HttpRequestHead& head) -> HttpReply {
          if (head.target == "/throw") throw std::runtime_error("boom");
          return knext::admin_route(head, state_);
        },
        options);
    auto listening = server_->listen("127.0.0.1", 0);
    REQUIRE_MESSAGE(listening.ok(), listening.error().message);
    port_ = server_->port();
    REQUIRE(port_ > 0);
    uv_async_init(loop_.get(), async_.get(),
                  [](uv_async_t* a) { static_cast<ServerThread*>(a->data)->run_tasks(); });
    async_.mark_initialized();
    async_.get()->data = this;
    thread_ = std::thread([this] { uv_run(loop_.get(), UV_RUN_DEFAULT); });
  }
  ~ServerThread() {
    on_loop([this] {
      server_.reset();
      async_.close();
    });
    thread_.join();  // uv_run returns once every handle is closed: nothing leaked on the loop
  }
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Runs fn on the loop thread and waits for it.
  void on_loop(std::function<void()> fn) {
    std::promise<void> done;
    auto finished = done.get_future();
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back([&] {
        fn();
        done.set_value();
      });
    }
    uv_async_send(async_.get());
    finished.wait();
  }
  void set_state(std::function<void(knext::LaunchState&)> change) {
    on_loop([&] { change(state_); });
  }
  std::size_t open_connections() {
    std::size_t n = 0;
    on_loop([&] { n = server_->open_connections(); });
    return n;
  }
  // Polls until the server holds `n` connections; false after `timeout`.
  bool wait_open_connections(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (open_connections() == n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return open_connections() == n;
  }

 private:
  void run_tasks() {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard lock(mutex_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
  }

  knext::UvLoop loop_;
  knext::Timeline timeline_;
  knext::LaunchState state_;
  std::unique_ptr<AdminServer> server_;
  knext::UvHandle<uv_async_t> async_;
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
  std::thread thread_;
  int port_ = 0;
};

// A blocking client socket; every read gives up after 5 s so a broken server fails, not hangs.
Fd connect_to(int port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  timeval tv{5, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

void send_all(const Fd& fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

struct ReadResult {
  std::string data;
  bool eof = false;    // the server closed with FIN
  bool reset = false;  // the server closed with RST (false with eof false: timed out)
};

ReadResult read_until_close(const Fd& fd) {
  ReadResult r;
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      r.data.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    r.eof = n == 0;
    r.reset = n < 0 && errno == ECONNRESET;
    return r;
  }
}

std::string exchange(int port, std::string_view request) {
  Fd fd = connect_to(port);
  send_all(fd, request);
  auto r = read_until_close(fd);
  CHECK(r.eof);
  return r.data;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}
std::string body_of(const std::string& response) {
  auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}
bool has_header(const std::string& response, const std::string& line) {
  auto head = response.substr(0, response.find("\r\n\r\n") + 2);
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

void reset_close(Fd& fd) {
  linger l{1, 0};  // close() sends RST instead of FIN
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  fd.reset();
}

}  // namespace

TEST_CASE("healthz and readyz follow the launch state (libcurl)") {
  ServerThread server;
  auto health = knext::http_get(server.url("/healthz"), 5000);
  REQUIRE_MESSAGE(health.ok(), health.error().message);
  CHECK(health->status == 503);
  auto ready = knext::http_get(server.url("/readyz"), 5000);
  REQUIRE(ready.ok());
  CHECK(ready->status == 503);

  server.set_state([](knext::LaunchState& s) { s.child_running = true; });
  health = knext::http_get(server.url("/healthz"), 5000);
  REQUIRE(health.ok());
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");
  CHECK(knext::http_get(server.url("/readyz"), 5000)->status == 503);

  server.set_state([](knext::LaunchState& s) { s.gate_open = true; });
  ready = knext::http_get(server.url("/readyz?verbose=1"), 5000);  // the query is ignored
  REQUIRE(ready.ok());
  CHECK(ready->status == 200);
  CHECK(ready->body == "ready\n");

  server.set_state([](knext::LaunchState& s) { s.child_running = false; });
  CHECK(knext::http_get(server.url("/healthz"), 5000)->status == 503);
}

TEST_CASE("/metrics and /startup are served with their content types") {
  ServerThread server;
  server.set_state([](knext::LaunchState& s) {
    s.child_running = true;
    s.restarts = 3;
  });
  auto metrics = exchange(server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(metrics) == 200);
  CHECK(has_header(metrics, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  CHECK(has_header(metrics, "Connection: close"));
  CHECK(body_of(metrics).find("\nknext_restarts_total 3\n") != std::string::npos);
  CHECK(body_of(metrics).find("knext_phase_ms{phase=\"config-parsed\"}") != std::string::npos);
  CHECK(has_header(metrics, "Content-Length: " + std::to_string(body_of(metrics).size())));

  auto startup = knext::http_get(server.url("/startup"), 5000);
  REQUIRE(startup.ok());
  CHECK(startup->status == 200);
  CHECK(startup->body.rfind(R"({"gate":"handoff","gate_open":false,"child_running":true,)", 0) ==
        0);
}

TEST_CASE("unknown paths are 404") {
  ServerThread server;
  auto r = knext::http_get(server.url("/nope"), 5000);
  REQUIRE(r.ok());
  CHECK(r->status == 404);
  CHECK(status_of(exchange(server.port(), "GET /healthz/extra HTTP/1.0\r\n\r\n")) == 404);
}

TEST_CASE("garbage gets 400 and an oversized head 431") {
  ServerThread server;
  auto garbage = exchange(server.port(), "hello there\r\n\r\n");
  CHECK(status_of(garbage) == 400);
  CHECK(has_header(garbage, "Connection: close"));
  // A TLS ClientHello is refused at once, without waiting for a line end.
  CHECK(status_of(exchange(server.port(), std::string("\x16\x03\x01\x02\x00\x01\x00", 7))) == 400);
  CHECK(status_of(exchange(server.port(), "GET / HTTP/2.0\r\n\r\n")) == 400);
  CHECK(status_of(exchange(server.port(), "GET /healthz HTTP/1.1\r\nno colon\r\n\r\n")) == 400);

  std::string huge = "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n";
  CHECK(status_of(exchange(server.port(), huge)) == 431);

  // A client that half-closes after part of a head still learns why.
  Fd fd = connect_to(server.port());
  send_all(fd, "GET /heal");
  shutdown(fd.get(), SHUT_WR);
  auto r = read_until_close(fd);
  CHECK(r.eof);
  CHECK(status_of(r.data) == 400);
  CHECK(server.wait_open_connections(0));
}

TEST_CASE("only GET and HEAD: POST is 405 with Allow, even when its body is never read") {
  ServerThread server;
  auto post = exchange(server.port(), "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(status_of(post) == 405);
  CHECK(has_header(post, "Allow: GET, HEAD"));
  // Unread request bytes must not turn the close into a RST that destroys the answer.
  std::string body(64 * 1024, 'x');
  auto with_body = exchange(server.port(), "PUT /readyz HTTP/1.1\r\nContent-Length: " +
                                               std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(status_of(with_body) == 405);
  CHECK(status_of(exchange(server.port(), "get /healthz HTTP/1.1\r\n\r\n")) == 405);
}

TEST_CASE("HEAD answers the GET head without the body") {
  ServerThread server;
  server.set_state([](knext::LaunchState& s) { s.child_running = true; });
  auto get = exchange(server.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  auto head = exchange(server.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  REQUIRE(status_of(head) == 200);
  CHECK(body_of(head).empty());
  CHECK(head.size() >= 4);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
  CHECK(!body_of(get).empty());
  CHECK(has_header(head, "Content-Length: " + std::to_string(body_of(get).size())));
  CHECK(status_of(exchange(server.port(), "HEAD /nope HTTP/1.1\r\n\r\n")) == 404);
}

TEST_CASE("a handler that throws is a 500, and the server goes on") {
  ServerThread server;
  auto r = exchange(server.port(), "GET /throw HTTP/1.1\r\n\r\n");
  CHECK(status_of(r) == 500);
  CHECK(body_of(r).find("boom") != std::string::npos);
  CHECK(status_of(exchange(server.port(), "GET /readyz HTTP/1.1\r\n\r\n")) == 503);
}

TEST_CASE("a silent client is closed after the read timeout, and does not block others") {
  constexpr auto kReadTimeout = 2s;
  ServerThread server(AdminServerOptions{kReadTimeout, 512});
  auto started = Clock::now();  // before the connects: the server's timers start after this
  Fd silent = connect_to(server.port());
  Fd partial = connect_to(server.port());
  send_all(partial, "GET /healthz HTTP/1.1\r\nHost:");
  REQUIRE(server.wait_open_connections(2));

  // Others are answered meanwhile: while both are still held open, not after they were dropped.
  CHECK(status_of(exchange(server.port(), "GET /readyz HTTP/1.1\r\n\r\n")) == 503);
  char byte = 0;
  errno = 0;
  CHECK(recv(silent.get(), &byte, 1, MSG_DONTWAIT) == -1);
  CHECK_MESSAGE(errno == EAGAIN, "the silent client was closed before the other was answered");

  // Closed by the read timeout and not before it (libuv's clock counts whole ms); a server that
  // never closes it fails the 5 s receive timeout of connect_to instead.
  auto r = read_until_close(silent);
  auto waited = Clock::now() - started;
  CHECK(r.eof);
  CHECK(r.data.empty());
  CHECK(waited >= kReadTimeout - 5ms);
  auto p = read_until_close(partial);
  CHECK(p.eof);
  CHECK(server.wait_open_connections(0));
}

TEST_CASE("the default read timeout is 5 s") {
  CHECK(AdminServerOptions{}.read_timeout == 5s);
}

TEST_CASE("200 concurrent clients are all answered") {
  ServerThread server;
  server.set_state([](knext::LaunchState& s) { s.child_running = true; });
  constexpr int kClients = 200;

  // All connected at once before any request is sent.
  std::vector<Fd> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(connect_to(server.port()));
  CHECK(server.wait_open_connections(kClients));
  for (auto& fd : clients) send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n");
  int answered = 0;
  for (auto& fd : clients) {
    auto r = read_until_close(fd);
    if (r.eof && status_of(r.data) == 200 && body_of(r.data) == "ok\n") ++answered;
  }
  CHECK(answered == kClients);
  // Whole requests were read: the server closes after answering, without waiting (up to the
  // 5 s read timeout) for these clients, which still hold their sockets, to close first.
  CHECK(server.wait_open_connections(0, 2s));

  // And 200 libcurl requests from 20 threads at the same time.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kClients / 20; ++i) {
        auto r = knext::http_get(server.url(i % 2 ? "/metrics" : "/healthz"), 10000);
        if (r.ok() && r->status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok.load() == kClients);
  CHECK(server.wait_open_connections(0));
}

TEST_CASE("clients that reset mid-request or before reading the answer do not hurt it") {
  ServerThread server;
  server.set_state([](knext::LaunchState& s) { s.child_running = true; });
  for (int i = 0; i < 50; ++i) {
    Fd connected_only = connect_to(server.port());
    Fd mid_head = connect_to(server.port());
    send_all(mid_head, "GET /metr");
    Fd whole = connect_to(server.port());
    send_all(whole, "GET /metrics HTTP/1.1\r\n\r\n");
    Fd post_body = connect_to(server.port());
    send_all(post_body, "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
    reset_close(connected_only);
    reset_close(mid_head);
    reset_close(whole);
    reset_close(post_body);
  }
  CHECK(status_of(exchange(server.port(), "GET /healthz HTTP/1.1\r\n\r\n")) == 200);
  // Freed as the resets arrive, not by the 5 s read timeout.
  CHECK(server.wait_open_connections(0, 2s));
}

TEST_CASE("when full, the oldest connection without a whole request makes room for a new one") {
  ServerThread server(AdminServerOptions{std::chrono::milliseconds(5000), 2, 0ms});
  Fd a = connect_to(server.port());
  REQUIRE(server.wait_open_connections(1));
  Fd b = connect_to(server.port());
  REQUIRE(server.wait_open_connections(2));
  Fd c = connect_to(server.port());
  send_all(c, "GET /healthz HTTP/1.1\r\n\r\n");
  auto answered = read_until_close(c);
  CHECK(answered.eof);
  CHECK(status_of(answered.data) == 503);
  auto evicted = read_until_close(a);  // the oldest: closed without an answer
  CHECK(evicted.data.empty());
  CHECK((evicted.eof || evicted.reset));
  send_all(b, "GET /readyz HTTP/1.1\r\n\r\n");  // the younger one was kept
  CHECK(status_of(read_until_close(b).data) == 503);
  CHECK(server.wait_open_connections(0));
}

TEST_CASE("connections over the limit are closed unanswered while none may be evicted") {
  // Every open connection is younger than evict_min_age: the new one is refused.
  ServerThread server(AdminServerOptions{std::chrono::milliseconds(5000), 2, 60s});
  Fd a = connect_to(server.port());
  Fd b = connect_to(server.port());
  REQUIRE(server.wait_open_connections(2));
  Fd c = connect_to(server.port());
  send_all(c, "GET /healthz HTTP/1.1\r\n\r\n");
  auto t0 = Clock::now();
  auto refused = read_until_close(c);
  CHECK(refused.data.empty());
  CHECK(Clock::now() - t0 < 2s);
  a.reset();
  b.reset();
  REQUIRE(server.wait_open_connections(0));
  CHECK(status_of(exchange(server.port(), "GET /healthz HTTP/1.1\r\n\r\n")) == 503);
}

TEST_CASE("2,000 idle connections: /healthz is still answered, every time") {
  ServerThread server;  // the defaults: 512 connections, 5 s head timeout
  server.set_state([](knext::LaunchState& s) { s.child_running = true; });
  constexpr int kIdle = 2000;
  std::vector<Fd> idle;
  for (int i = 0; i < kIdle; ++i) idle.push_back(connect_to(server.port()));
  CHECK(server.wait_open_connections(AdminServerOptions{}.max_connections));
  std::this_thread::sleep_for(AdminServerOptions{}.evict_min_age);
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = knext::http_get(server.url("/healthz"), 3000);
    if (r.ok() && r->status == 200) ++answered;
  }
  CHECK(answered == 20);
  CHECK(server.open_connections() <= AdminServerOptions{}.max_connections);
}

TEST_CASE("closing the server with connections open frees them") {
  knext::UvLoop loop;
  std::vector<Fd> clients;
  {
    AdminServer server(loop.get(), [](const HttpRequestHead&) { return HttpReply{200, "", ""}; });
    REQUIRE(server.listen("127.0.0.1", 0).ok());
    for (int i = 0; i < 3; ++i) clients.push_back(connect_to(server.port()));
    send_all(clients[0], "GET / HTTP/1.1\r\n");
    auto deadline = Clock::now() + 5s;
    while (server.open_connections() < 3 && Clock::now() < deadline) {
      uv_run(loop.get(), UV_RUN_NOWAIT);
    }
    CHECK(server.open_connections() == 3);
  }                                    // the destructor closes the listener and the connections
  uv_run(loop.get(), UV_RUN_DEFAULT);  // returns only when every handle's close callback ran
  CHECK(uv_loop_alive(loop.get()) == 0);
  for (auto& fd : clients) {
    auto r = read_until_close(fd);  // unread request bytes make it a RST, which is fine here
    CHECK((r.eof || r.reset));
  }
}

TEST_CASE("listen errors name the port and the reason") {
  knext::UvLoop loop;
  auto handler = [](const HttpRequestHead&) { return HttpReply{200, "", ""}; };
  AdminServer first(loop.get(), handler);
  REQUIRE(first.listen("127.0.0.1", 0).ok());
  int port = first.port();

  AdminServer second(loop.get(), handler);
  auto taken = second.listen("127.0.0.1", port);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().message == "admin port " + std::to_string(port) + ": address already in use");
  CHECK(taken.error().code == EADDRINUSE);

  AdminServer third(loop.get(), handler);
  auto bad_host = third.listen("not-an-ip", 9901);
  REQUIRE_FALSE(bad_host.ok());
  CHECK(bad_host.error().message == "admin port 9901: 'not-an-ip' is not an IPv4 or IPv6 address");

  AdminServer fourth(loop.get(), handler);
  CHECK_FALSE(fourth.listen("127.0.0.1", 70000).ok());
  CHECK_FALSE(first.listen("127.0.0.1", 0).ok());  // once per server

  // IPv6: where the host has ::1 the server listens there; where it has not, the error names the
  // port and the reason like the others. /proc/net/if_inet6 lists the host's IPv6 addresses.
  std::ifstream if_inet6("/proc/net/if_inet6");
  bool has_loopback6 = false;
  for (std::string line; std::getline(if_inet6, line);) {
    has_loopback6 = has_loopback6 || line.starts_with("00000000000000000000000000000001 ");
  }
  AdminServer v6(loop.get(), handler);
  auto any6 = v6.listen("::1", 0);
  if (has_loopback6) {
    REQUIRE_MESSAGE(any6.ok(), any6.error().message);
    CHECK(v6.port() > 0);
  } else {
    MESSAGE("this host has no ::1: the listen error is checked instead");
    REQUIRE_FALSE(any6.ok());
    CHECK(any6.error().message.starts_with("admin port 0: "));
  }
}
