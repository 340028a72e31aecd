#pragma once
#include <curl/curl.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/expected.hpp"

namespace knext {

// libcurl is loaded with dlopen on first use, not linked: linking it (and its TLS, IDN, LDAP
// dependencies) costs ~5 ms at every exec, which would sit on the critical path before node.
struct CurlApi {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
};

// Loaded once per process; the error names the library when it is missing.
Expected<const CurlApi*> curl_api();

struct HttpResponse {
  long status = 0;
  std::string body;
};

// One blocking GET, redirects not followed (run off the loop thread: bench, warm-up, tests).
// A set `cancel` flag aborts the transfer within a few ms.
Expected<HttpResponse> http_get(const std::string& url, long timeout_ms,
                                const std::atomic<bool>* cancel = nullptr);

}  // namespace knext
