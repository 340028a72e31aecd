#pragma once
// Errors as values at module boundaries (std::expected is C++23; this is the small subset we use).
#include <string>
#include <utility>
#include <variant>

namespace knext {

struct Error {
  std::string message;
  int code = 0;  // errno or exit code where the caller needs one
};

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Expected<Unit>;
inline Status ok_status() {
  return Unit{};
}

}  // namespace knext
