#include "probes/http/tcp_server.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <utility>

namespace knext {

Expected<sockaddr_storage> ip_address(const std::string& host, int port) {
  if (port < 0 || port > 65535) return Error{fmt::format("port {} is out of range", port), EINVAL};
  std::string ip = host.empty() ? "0.0.0.0" : host == "localhost" ? "127.0.0.1" : host;
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  sockaddr_storage address{};
  if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&address)) == 0 ||
      uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address)) == 0) {
    return address;
  }
  return Error{fmt::format("{} is not an IP address", host), EINVAL};
}

void TcpConnection::close(bool reset) {
  if (closing_) return;
  closing_ = true;
  // Once accepted, the client and the timer are initialised, so close callbacks are pending
  // below and this object outlives the caller's frame.
  std::unique_ptr<TcpConnection> owned = server_->detach(*this);
  if (client_ready_) close_handle(&client_, reset);
  if (timer_ready_) {
    ++pending_closes_;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  }
  close_extra_handles(reset);
  // Owned by the close callbacks now: the last one frees it. Only a connection whose handles
  // failed to initialise (in TcpServer::on_connection) has none, and is freed here.
  if (pending_closes_ > 0) owned.release();
}

void TcpConnection::close_handle(uv_tcp_t* tcp, bool reset) {
  ++pending_closes_;
  // uv_tcp_close_reset refuses a stream being shut down; that one just closes.
  if (!reset || uv_tcp_close_reset(tcp, on_closed) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), on_closed);
  }
}

void TcpConnection::on_closed(uv_handle_t* handle) {
  auto* self = static_cast<TcpConnection*>(handle->data);
  if (--self->pending_closes_ == 0) std::unique_ptr<TcpConnection> last_owner(self);
}

void TcpConnection::arm_timer(std::chrono::milliseconds timeout) {
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { from<TcpConnection>(t->data).on_timeout(); },
      static_cast<uint64_t>(timeout.count()), 0);
}

void TcpConnection::stop_timer() {
  uv_timer_stop(&timer_);
}

TcpServer::TcpServer(uv_loop_t* loop, Factory factory, TcpServerOptions options)
    : loop_(loop), factory_(std::move(factory)), options_(options) {}

TcpServer::~TcpServer() {
  close();
}

Status TcpServer::listen(const std::string& host, int port) {
  if (listen_called_) return Error{"listen() was already called", EINVAL};
  listen_called_ = true;
  auto address = ip_address(host, port);
  if (!address) return address.error();
  auto failed = [](int rc) { return Error{uv_strerror(rc), -rc}; };
  if (int rc = uv_tcp_init(loop_, listener_.get()); rc != 0) return failed(rc);
  listener_.mark_initialized();
  listener_.get()->data = this;
  if (int rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&*address), 0);
      rc != 0) {
    return failed(rc);
  }
  auto on_connection = [](uv_stream_t* listener, int status) {
    static_cast<TcpServer*>(listener->data)->on_connection(status);
  };
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), options_.backlog,
                         on_connection);
      rc != 0) {
    return failed(rc);
  }
  sockaddr_storage bound{};
  int length = sizeof(bound);
  if (int rc = uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &length);
      rc != 0) {
    return failed(rc);
  }
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return ok_status();
}

void TcpServer::close_listener() {
  listener_.close();
  port_ = 0;
}

void TcpServer::close() {
  close_listener();
  while (!connections_.empty()) connections_.front()->close();
}

void TcpServer::on_connection(int status) {
  if (status < 0) return;  // e.g. EMFILE: libuv keeps the listener going
  bool room = connections_.size() < options_.max_connections || make_room();
  connections_.push_back(factory_());
  TcpConnection& c = *connections_.back();
  c.position_ = std::prev(connections_.end());
  c.server_ = this;
  c.accepted_at_ = uv_now(loop_);
  c.client_.data = &c;
  c.timer_.data = &c;
  c.client_ready_ = uv_tcp_init(loop_, &c.client_) == 0;
  c.timer_ready_ = uv_timer_init(loop_, &c.timer_) == 0;
  // Accept even when full (the kernel's queue must drain), then drop it.
  if (!c.client_ready_ || !c.timer_ready_ ||
      uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()), c.client()) != 0) {
    c.close();
    return;
  }
  if (!room) {
    ++refused_;
    c.close();
    return;
  }
  uv_tcp_nodelay(&c.client_, 1);
  c.on_accepted();
}

bool TcpServer::make_room() {
  if (!options_.evict_when_full) return false;
  uint64_t now = uv_now(loop_);
  auto min_age = static_cast<uint64_t>(options_.evict_min_age.count());
  for (auto& c : connections_) {
    if (c->evictable_ && !c->closing_ && now - c->accepted_at_ >= min_age) {
      ++evicted_;
      c->close();  // erases it from connections_: stop iterating
      return true;
    }
  }
  return false;
}

std::unique_ptr<TcpConnection> TcpServer::detach(TcpConnection& connection) {
  std::unique_ptr<TcpConnection> owned = std::move(*connection.position_);
  connections_.erase(connection.position_);
  connection.server_ = nullptr;
  return owned;
}

}  // namespace knext
