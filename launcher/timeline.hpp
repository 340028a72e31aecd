#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace knext {

// The launcher's phase timeline (ms since exec), logged as it happens and kept for export.
class Timeline {
 public:
  struct Phase {
    std::string name;
    double ms;
  };

  double mark(std::string_view name, std::string_view detail = {});
  const std::vector<Phase>& phases() const { return phases_; }

 private:
  std::vector<Phase> phases_;
};

}  // namespace knext
