#include "bench/slow_storage.hpp"
#include "bench/stop_on_signal.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/boost_process.hpp"
#include "common/exit_status.hpp"
#include "common/process_wait.hpp"
#include "common/self_exe.hpp"

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace knext::bench {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);
constexpr auto kStopTimeout = std::chrono::seconds(5);

// mountinfo writes space, tab, newline and backslash in paths as \ooo.
std::string unescape_octal(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      auto octal = field.substr(i + 1, 3);
      if (octal.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(octal, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += field[i];
  }
  return out;
}

// Everything the daemon said (libfuse's reason and ours), on one line.
std::string daemon_output(const fs::path& log) {
  std::ifstream in(log);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out.empty() ? "no output" : out;
}

Error path_error(const std::string& path, const std::error_code& ec) {
  return Error{"slow storage: " + path + ": " + ec.message(), ec.value()};
}

Expected<fs::path> existing_canonical(const std::string& path) {
  if (!fs::path(path).is_absolute()) {
    return Error{"slow storage: '" + path + "' is not an absolute path", EINVAL};
  }
  std::error_code ec;
  auto canonical = fs::canonical(path, ec);
  if (ec) return path_error(path, ec);
  return canonical;
}

bool is_within(const fs::path& path, const fs::path& root) {
  auto rel = path.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

// The deepest directory holding every path (a file counts as its directory). Chosen over "/"
// so that the mount exposes what the scenario runs and nothing else: not /proc or /dev, and
// usually not the mountpoint itself (the daemon hides it when it does fall inside).
Expected<fs::path> common_directory(const std::vector<std::string>& paths) {
  fs::path common;
  for (const auto& path : paths) {
    auto canonical = existing_canonical(path);
    if (!canonical) return canonical.error();
    std::error_code ec;
    fs::path dir = fs::is_directory(*canonical, ec) ? *canonical : canonical->parent_path();
    if (common.empty()) {
      common = dir;
      continue;
    }
    fs::path prefix;
    for (auto a = common.begin(), b = dir.begin(); a != common.end() && b != dir.end() && *a == *b;
         ++a, ++b) {
      prefix /= *a;
    }
    common = prefix;
  }
  if (common.empty()) return Error{"slow storage: no paths to expose", EINVAL};
  return common;
}

Expected<fs::path> source_for(const SlowStorageOptions& options) {
  if (options.source_root.empty()) return common_directory(options.paths);
  auto root = existing_canonical(options.source_root);
  if (!root) return root.error();
  for (const auto& path : options.paths) {
    auto canonical = existing_canonical(path);
    if (!canonical) return canonical.error();
    if (!is_within(*canonical, *root)) {
      return Error{"slow storage: " + path + " is outside " + root->string(), EINVAL};
    }
  }
  return root;
}

Expected<fs::path> slowfs_binary(const std::string& configured) {
  fs::path bin = configured;
  if (bin.empty()) {
    auto beside = beside_self("knext-slowfs");
    if (!beside) return beside.error();
    bin = *beside;
  }
  if (access(bin.c_str(), X_OK) != 0) {
    return Error{"knext-slowfs not found: " + bin.string() + ": " + std::strerror(errno), errno};
  }
  return bin;
}

}  // namespace

bool is_mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // "<id> <parent> <major:minor> <root> <mount point> ...": the fifth field.
    size_t start = 0;
    for (int field = 0; field < 4 && start != std::string::npos; ++field) {
      start = line.find(' ', start);
      if (start != std::string::npos) ++start;
    }
    if (start == std::string::npos) continue;
    auto end = line.find(' ', start);
    if (unescape_octal(line.substr(start, end - start)) == path) return true;
  }
  return false;
}

struct SlowStorage::State {
  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State();

  std::string source;
  std::string dir;  // holds the mountpoint and the daemon's stderr
  std::string mountpoint;
  std::string log;
  bp::child daemon;
  OnStopSignal cleanup_dirs;
  std::unique_ptr<StopChildOnSignal> stop_daemon;
  OnStopSignal on_stop;
};

namespace {

// One by one, never recursively: if the mount were somehow still there, a recursive delete would
// walk into the source.
void remove_scratch(const std::string& log, const std::string& mountpoint, const std::string& dir) {
  std::error_code ec;
  if (!log.empty()) fs::remove(log, ec);
  if (!mountpoint.empty()) fs::remove(mountpoint, ec);
  if (!dir.empty()) fs::remove(dir, ec);
}

}  // namespace

SlowStorage::State::~State() {
  if (!mountpoint.empty() && is_mounted(mountpoint)) {
    // Busy (a process still has files open or mapped): detach now, gone when they close.
    if (umount2(mountpoint.c_str(), 0) != 0) umount2(mountpoint.c_str(), MNT_DETACH);
  }
  if (daemon.valid() && daemon.running()) {
    ::kill(daemon.id(), SIGTERM);
    if (!wait_with_timeout(daemon, kStopTimeout)) {
      ::kill(daemon.id(), SIGKILL);
      daemon.wait();
    }
  }
  // A daemon that died before unmounting leaves a dead mount ("Transport endpoint is not
  // connected") that only an unmount clears.
  if (!mountpoint.empty() && is_mounted(mountpoint)) umount2(mountpoint.c_str(), MNT_DETACH);
  remove_scratch(log, mountpoint, dir);
}

SlowStorage::SlowStorage(std::unique_ptr<State> state) : state_(std::move(state)) {}
SlowStorage::SlowStorage(SlowStorage&&) noexcept = default;
SlowStorage& SlowStorage::operator=(SlowStorage&&) noexcept = default;
SlowStorage::~SlowStorage() = default;

Expected<SlowStorage> SlowStorage::mount(const SlowStorageOptions& options) {
  auto source = source_for(options);
  if (!source) return source.error();
  auto bin = slowfs_binary(options.slowfs_bin);
  if (!bin) return bin.error();

  auto state = std::make_unique<State>();
  state->source = source->string();
  std::string pattern = (fs::temp_directory_path() / "knext-slowfs-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Error{
        "slow storage: cannot create a temporary directory: " + std::string(std::strerror(errno)),
        errno};
  }
  state->dir = pattern;  // removed by ~State if anything below fails
  std::error_code ec;
  // The kernel lists the mountpoint by its real path (TMPDIR may go through a symlink).
  auto real_dir = fs::canonical(pattern, ec);
  if (ec) return path_error(pattern, ec);
  state->dir = real_dir.string();
  state->mountpoint = state->dir + "/mnt";
  state->log = state->dir + "/slowfs.log";
  if (!fs::create_directory(state->mountpoint, ec)) return path_error(state->mountpoint, ec);

  std::vector<std::string> args = {"--source",        state->source,
                                   "--mountpoint",    state->mountpoint,
                                   "--read-delay-us", std::to_string(options.read_delay.count())};
  // On a stop signal, newest first: unmount, stop the daemon, remove the directories.
  state->cleanup_dirs = OnStopSignal([log = state->log, mnt = state->mountpoint, dir = state->dir] {
    remove_scratch(log, mnt, dir);
  });
  state->stop_daemon = std::make_unique<StopChildOnSignal>(kStopTimeout);
  try {
    state->daemon =
        bp::child(bp::exe = bin->string(), bp::args = args,
                  bp::std_in<bp::null, bp::std_out> bp::null, bp::std_err > fs::path(state->log));
  } catch (const bp::process_error& e) {
    state->stop_daemon->failed();
    return Error{"cannot start " + bin->string() + ": " + e.what(), e.code().value()};
  }
  state->stop_daemon->spawned(state->daemon.id());
  state->on_stop = OnStopSignal([mnt = state->mountpoint] { umount2(mnt.c_str(), MNT_DETACH); });

  auto deadline = std::chrono::steady_clock::now() + options.mount_timeout;
  while (!is_mounted(state->mountpoint)) {
    if (!state->daemon.running()) {
      int code = exit_code_from_wait_status(state->daemon.native_exit_code());
      return Error{fmt::format("knext-slowfs exited ({}) without mounting: {}", code,
                               daemon_output(state->log)),
                   code};
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Error{fmt::format("knext-slowfs did not mount within {} ms: {}",
                               options.mount_timeout.count(), daemon_output(state->log)),
                   ETIMEDOUT};
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return SlowStorage(std::move(state));
}

std::string SlowStorage::map(const std::string& absolute_path) const {
  if (!state_) return absolute_path;
  std::error_code ec;
  auto path = fs::weakly_canonical(absolute_path, ec);
  if (ec) path = fs::path(absolute_path).lexically_normal();
  fs::path source = state_->source;
  if (!is_within(path, source)) return absolute_path;
  auto rel = path.lexically_relative(source);
  return rel == "." ? state_->mountpoint : (fs::path(state_->mountpoint) / rel).string();
}

const std::string& SlowStorage::source() const {
  return state_->source;
}

const std::string& SlowStorage::mountpoint() const {
  return state_->mountpoint;
}

}  // namespace knext::bench
