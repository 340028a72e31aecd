#include "probes/http/curl_api.hpp"

#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <mutex>

namespace knext {
namespace {

template <class F>
bool load(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

Expected<CurlApi> load_curl() {
  void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    return Error{std::string("cannot load libcurl.so.4: ") + (why ? why : "unknown error")};
  }
  CurlApi api{};
  bool ok = load(lib, "curl_global_init", api.global_init) &&
            load(lib, "curl_easy_init", api.easy_init) &&
            load(lib, "curl_easy_setopt", api.easy_setopt) &&
            load(lib, "curl_easy_perform", api.easy_perform) &&
            load(lib, "curl_easy_getinfo", api.easy_getinfo) &&
            load(lib, "curl_easy_cleanup", api.easy_cleanup) &&
            load(lib, "curl_easy_strerror", api.easy_strerror) &&
            load(lib, "curl_slist_append", api.slist_append) &&
            load(lib, "curl_slist_free_all", api.slist_free_all);
  if (!ok) return Error{"libcurl.so.4 lacks an expected symbol"};
  CurlApi multi = api;
  bool multi_ok = load(lib, "curl_multi_init", multi.multi_init) &&
                  load(lib, "curl_multi_setopt", multi.multi_setopt) &&
                  load(lib, "curl_multi_add_handle", multi.multi_add_handle) &&
                  load(lib, "curl_multi_remove_handle", multi.multi_remove_handle) &&
                  load(lib, "curl_multi_perform", multi.multi_perform) &&
                  load(lib, "curl_multi_poll", multi.multi_poll) &&
                  load(lib, "curl_multi_info_read", multi.multi_info_read) &&
                  load(lib, "curl_multi_cleanup", multi.multi_cleanup) &&
                  load(lib, "curl_multi_strerror", multi.multi_strerror);
  if (multi_ok) api = multi;
  api.global_init(CURL_GLOBAL_DEFAULT);
  return api;  // the library stays loaded for the life of the process
}

int check_cancel(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

size_t append_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::atomic<int> g_avoided_port{0};

// Binds the new socket to an ephemeral port of the kernel's choosing and fails the attempt if
// that is the avoided one; the caller's retry then gets another.
int refuse_avoided_port(void*, curl_socket_t fd, curlsocktype purpose) {
  int avoided = g_avoided_port.load();
  if (purpose != CURLSOCKTYPE_IPCXN || avoided == 0) return CURL_SOCKOPT_OK;
  int family = 0;
  socklen_t len = sizeof family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return CURL_SOCKOPT_OK;
  sockaddr_storage any{};
  len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (family != AF_INET && family != AF_INET6) return CURL_SOCKOPT_OK;
  any.ss_family = static_cast<sa_family_t>(family);
  if (bind(fd, reinterpret_cast<sockaddr*>(&any), len) != 0) return CURL_SOCKOPT_OK;
  sockaddr_storage bound{};
  len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return CURL_SOCKOPT_OK;
  int port = family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return port == avoided ? CURL_SOCKOPT_ERROR : CURL_SOCKOPT_OK;
}

}  // namespace

void avoid_local_port(int port) {
  g_avoided_port = port;
}

Expected<const CurlApi*> curl_api() {
  static std::once_flag once;
  static std::unique_ptr<Expected<CurlApi>> loaded;
  std::call_once(once, [] { loaded = std::make_unique<Expected<CurlApi>>(load_curl()); });
  if (!*loaded) return loaded->error();
  return &loaded->value();
}

Expected<HttpResponse> http_get(const std::string& url, long timeout_ms,
                                const std::atomic<bool>* cancel, const std::string& header,
                                std::atomic<bool>* connected) {
  auto api = curl_api();
  if (!api) return api.error();
  const CurlApi& c = **api;
  std::unique_ptr<CURL, void (*)(CURL*)> easy(c.easy_init(), c.easy_cleanup);
  if (!easy) return Error{"curl_easy_init failed"};
  HttpResponse response;
  c.easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  c.easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  c.easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  c.easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, append_body);
  c.easy_setopt(easy.get(), CURLOPT_WRITEDATA, &response.body);
  c.easy_setopt(easy.get(), CURLOPT_SOCKOPTFUNCTION, refuse_avoided_port);
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, c.slist_free_all);
  if (!header.empty()) {
    headers.reset(c.slist_append(nullptr, header.c_str()));
    c.easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  if (cancel != nullptr) {
    c.easy_setopt(easy.get(), CURLOPT_NOPROGRESS, 0L);
    c.easy_setopt(easy.get(), CURLOPT_XFERINFOFUNCTION, check_cancel);
    c.easy_setopt(easy.get(), CURLOPT_XFERINFODATA, cancel);
  }
  if (connected != nullptr) {
    auto mark = +[](void* flag, char*, char*, int, int) -> int {
      static_cast<std::atomic<bool>*>(flag)->store(true);
      return CURL_PREREQFUNC_OK;
    };
    if (c.easy_setopt(easy.get(), CURLOPT_PREREQFUNCTION, mark) != CURLE_OK ||
        c.easy_setopt(easy.get(), CURLOPT_PREREQDATA, connected) != CURLE_OK) {
      connected->store(true);
    }
  }
  CURLcode rc = c.easy_perform(easy.get());
  if (rc != CURLE_OK) {
    return Error{std::string("GET ") + url + ": " + c.easy_strerror(rc), static_cast<int>(rc)};
  }
  c.easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace knext
