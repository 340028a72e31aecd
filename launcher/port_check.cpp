#include "launcher/port_check.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace knext {
namespace {
constexpr uint64_t kRetryMs = 50;

sockaddr_storage address_of(const std::string& host, int port) {
  sockaddr_storage out{};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (host.find(':') != std::string::npos && host != "::" &&
      inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return out;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "localhost" ||
      inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) {
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  return out;
}
}  // namespace

struct PortCheck::Attempt {
  UvHandle<uv_tcp_t> tcp;
  uv_connect_t request{};
  PortCheck* owner = nullptr;
};

PortCheck::PortCheck(uv_loop_t* loop) : loop_(loop), retry_(loop) {}

PortCheck::~PortCheck() {
  stop();
}

void PortCheck::start(const std::string& host, int port, std::function<void()> on_open,
                      std::function<void(const std::string&)> on_refused) {
  stop();
  address_ = address_of(host, port);
  on_open_ = std::move(on_open);
  on_refused_ = std::move(on_refused);
  running_ = true;
  reported_refusal_ = false;
  attempt();
}

void PortCheck::stop() {
  running_ = false;
  retry_.stop();
  if (pending_ != nullptr) {
    pending_->owner = nullptr;
    pending_->tcp.close();  // its connect callback runs with UV_ECANCELED and frees it
    pending_ = nullptr;
  }
}

void PortCheck::attempt() {
  auto next = std::make_unique<Attempt>();
  next->owner = this;
  next->request.data = next.get();
  int rc = uv_tcp_init(loop_, next->tcp.get());
  if (rc == 0) {
    next->tcp.mark_initialized();
    rc = uv_tcp_connect(&next->request, next->tcp.get(),
                        reinterpret_cast<const sockaddr*>(&address_),
                        [](uv_connect_t* req, int status) {
                          std::unique_ptr<Attempt> done(static_cast<Attempt*>(req->data));
                          if (done->owner != nullptr) done->owner->on_result(status);
                        });
  }
  if (rc != 0) {
    on_result(rc);  // e.g. out of fds: try again later
    return;
  }
  pending_ = next.release();
}

void PortCheck::on_result(int status) {
  pending_ = nullptr;
  if (!running_) return;
  if (status == 0) {
    running_ = false;
    if (on_open_) on_open_();
    return;
  }
  if (!reported_refusal_) {
    reported_refusal_ = true;
    if (on_refused_) on_refused_(uv_strerror(status));
  }
  retry_.start(kRetryMs, 0, [this] { attempt(); });
}

}  // namespace knext
