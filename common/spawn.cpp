#include "common/spawn.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/fd.hpp"

extern char** environ;

namespace knext {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

bool is_executable_file(const std::string& path, int& err) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    err = errno;
    return false;
  }
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) {
    err = EACCES;
    return false;
  }
  return true;
}

// Runs in the forked child: only async-signal-safe calls from here on.
[[noreturn]] void exec_child(const char* path, char* const argv[], char* const envp[],
                             const SpawnRequest& request, int error_fd) {
  for (int fd : request.inherit_fds) fcntl(fd, F_SETFD, 0);
  if (request.stdin_fd >= 0) dup2(request.stdin_fd, STDIN_FILENO);
  if (request.stdout_fd >= 0) dup2(request.stdout_fd, STDOUT_FILENO);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  // Every signal, glibc's internal ones included, back to its default: the parent's
  // ignored signals would otherwise survive the exec.
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  if (request.new_process_group) setpgid(0, 0);
  int err = request.run_as ? drop_privileges(*request.run_as) : 0;
  if (err != 0) {
    ssize_t ignored = write(error_fd, &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
  execve(path, argv, envp);
  err = errno;
  ssize_t ignored = write(error_fd, &err, sizeof(err));
  (void)ignored;
  _exit(127);
}

}  // namespace

// execvp's PATH search, done before fork so the child only has to execve.
Expected<std::string> resolve_command(const std::string& name,
                                      const std::optional<std::string>& path_env) {
  if (name.find('/') != std::string::npos) return name;
  std::string_view path =
      path_env ? std::string_view(*path_env) : std::string_view("/usr/local/bin:/usr/bin:/bin");
  int first_error = ENOENT;
  while (true) {
    auto colon = path.find(':');
    std::string dir(path.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    int err = ENOENT;
    if (is_executable_file(candidate, err)) return candidate;
    if (err == EACCES) first_error = EACCES;
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return Error{"", first_error};
}

Expected<std::string> resolve_command(const std::string& name) {
  const char* path_env = std::getenv("PATH");
  return resolve_command(name,
                         path_env != nullptr ? std::optional<std::string>(path_env) : std::nullopt);
}

Error spawn_error(const std::string& program, int err) {
  return Error{"cannot run '" + program + "': " + std::strerror(err), err};
}

Expected<pid_t> spawn_child(const SpawnRequest& request) {
  if (request.argv.empty()) return Error{"no command to run", ENOENT};
  auto fail = [&](int err) { return spawn_error(request.argv[0], err); };
  auto path = request.program.empty() ? resolve_command(request.argv[0])
                                      : Expected<std::string>(request.program);
  if (!path) return fail(path.error().code);

  auto argv = c_strings(request.argv);
  auto envp = c_strings(request.env);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(errno);
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);

  // No signal handler may run in the child before it has reset the dispositions.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = fork();
  if (pid == 0) {
    exec_child(path->c_str(), argv.data(), envp.data(), request, write_end.get());
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) return fail(fork_errno);
  if (request.new_process_group) setpgid(pid, pid);  // no race with a signal to the group
  write_end.reset();

  // The pipe closes on a successful exec; otherwise the child sends its errno first.
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(read_end.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(child_errno)) {
    int status = 0;
    waitpid(pid, &status, 0);
    return fail(child_errno);
  }
  return pid;
}

std::optional<std::string> get_env(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& kv : env) {
    if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 &&
        kv[name.size()] == '=') {
      return kv.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

void set_env(std::vector<std::string>& env, std::string_view name, std::string_view value) {
  std::string entry = std::string(name) + "=" + std::string(value);
  for (auto& kv : env) {
    if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 &&
        kv[name.size()] == '=') {
      kv = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

}  // namespace knext
