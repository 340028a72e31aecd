#pragma once
#include <curl/curl.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/expected.hpp"

namespace knext {

// libcurl is loaded with dlopen on first use, not linked: linking it (and its TLS, IDN, LDAP
// dependencies) costs time at every exec, on the critical path before node (README "Cost").
struct CurlApi {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);

  // The multi interface (the bench's load generator). Loaded apart from the easy functions so a
  // libcurl older than 7.66 (no curl_multi_poll) still serves warm-up; null when missing.
  CURLM* (*multi_init)();
  CURLMcode (*multi_setopt)(CURLM*, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM*, CURL*);
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
  CURLMcode (*multi_perform)(CURLM*, int*);
  CURLMcode (*multi_poll)(CURLM*, curl_waitfd*, unsigned int, int, int*);
  CURLMsg* (*multi_info_read)(CURLM*, int*);
  CURLMcode (*multi_cleanup)(CURLM*);
  const char* (*multi_strerror)(CURLMcode);
  bool has_multi() const { return multi_init != nullptr; }
};

// Loaded once per process; the error names the library when it is missing.
Expected<const CurlApi*> curl_api();

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Every later http_get in this process refuses `port` as its connection's local port (0: none):
// the warm-up must not take the app's PORT as a source port while the app is yet to bind it.
void avoid_local_port(int port);

// One blocking GET, redirects not followed (run off the loop thread: bench, warm-up, tests).
// A set `cancel` flag aborts the transfer within a few ms. `header` ("Name: value") is sent when
// not empty. `connected`, when given, turns true once the connection is up and the request is
// about to be sent (at once with a libcurl older than 7.80, which cannot tell). A transport
// error's code is the CURLcode.
Expected<HttpResponse> http_get(const std::string& url, long timeout_ms,
                                const std::atomic<bool>* cancel = nullptr,
                                const std::string& header = {},
                                std::atomic<bool>* connected = nullptr);

}  // namespace knext
