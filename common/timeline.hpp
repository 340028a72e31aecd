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
  // t0 itself: the launcher's exec, 0 ms by definition (logged once at start).
  void mark_exec();
  const std::vector<Phase>& phases() const { return phases_; }

 private:
  std::vector<Phase> phases_;
};

}  // namespace knext
