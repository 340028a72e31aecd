#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "common/run_as.hpp"

namespace knext {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH unless it has a '/'
  std::string program;            // the file to exec, already looked up; empty: argv[0]
  std::vector<std::string> env;   // the child's whole environment, "NAME=value"
  bool new_process_group = false;
  std::vector<int> inherit_fds;  // close-on-exec fds the child keeps (same numbers)
  int stdin_fd = -1;             // >= 0: becomes the child's stdin
  int stdout_fd = -1;            // >= 0: becomes the child's stdout
  std::optional<RunAs> run_as;   // the child drops to this user before the exec
};

// Starts the child with an empty signal mask and every signal at its default disposition,
// inheriting cwd and stdio. On failure Error::code is errno from the exec.
Expected<pid_t> spawn_child(const SpawnRequest& request);

std::vector<std::string> current_environment();
std::optional<std::string> get_env(const std::vector<std::string>& env, std::string_view name);
void set_env(std::vector<std::string>& env, std::string_view name, std::string_view value);

// execvp's PATH search in `path` (a PATH value; none: the default PATH): the path that would be
// exec'd, or the errno (ENOENT, EACCES). The one-argument form searches the launcher's PATH.
Expected<std::string> resolve_command(const std::string& name,
                                      const std::optional<std::string>& path);
Expected<std::string> resolve_command(const std::string& name);
// The one line a spawn failure is reported with.
Error spawn_error(const std::string& program, int err);

}  // namespace knext
