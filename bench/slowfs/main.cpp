// knext-slowfs --source DIR --mountpoint DIR [--read-delay-us N] [--threads N]
// Mounts a read-only passthrough of DIR whose every read request waits N microseconds, in the
// foreground until SIGTERM/SIGINT/SIGHUP or an unmount. Bad arguments: one line, exit 2; FUSE
// unavailable or the mount refused: one line (libfuse may add its own), exit 1.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/slowfs/passthrough.hpp"
#include "common/expected.hpp"

namespace {

constexpr const char* kUsage =
    "usage: knext-slowfs --source DIR --mountpoint DIR [--read-delay-us N] [--threads N]";
constexpr long kMaxDelayUs = 10'000'000;
constexpr long kMaxThreads = 1024;

struct Args {
  std::string source;
  std::string mountpoint;
  long read_delay_us = 0;
  long threads = 32;
  bool help = false;
};

knext::Expected<long> parse_number(std::string_view flag, std::string_view text, long min,
                                   long max) {
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    return knext::Error{std::string(flag) + ": '" + std::string(text) + "' is not an integer in " +
                        std::to_string(min) + ".." + std::to_string(max)};
  }
  return value;
}

knext::Expected<Args> parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args.help = true;
      continue;
    }
    std::string_view flag = arg;
    std::string_view value;
    auto eq = arg.find('=');
    if (eq != std::string_view::npos) flag = arg.substr(0, eq);
    if (flag != "--source" && flag != "--mountpoint" && flag != "--read-delay-us" &&
        flag != "--threads") {
      return knext::Error{"unknown argument '" + std::string(arg) + "'"};
    }
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return knext::Error{std::string(arg) + " needs a value"};
    }
    if (flag == "--source") {
      args.source = value;
    } else if (flag == "--mountpoint") {
      args.mountpoint = value;
    } else if (flag == "--read-delay-us") {
      auto n = parse_number(flag, value, 0, kMaxDelayUs);
      if (!n) return n.error();
      args.read_delay_us = *n;
    } else if (flag == "--threads") {
      auto n = parse_number(flag, value, 1, kMaxThreads);
      if (!n) return n.error();
      args.threads = *n;
    }
  }
  if (args.help) return args;
  if (args.source.empty()) return knext::Error{"--source is required"};
  if (args.mountpoint.empty()) return knext::Error{"--mountpoint is required"};
  return args;
}

// fuse_new keeps pointers into the argument vector: it must outlive the session.
class FuseArgs {
 public:
  explicit FuseArgs(std::vector<std::string> words) : words_(std::move(words)) {
    for (auto& w : words_) ptrs_.push_back(w.data());
    args_ = FUSE_ARGS_INIT(static_cast<int>(ptrs_.size()), ptrs_.data());
  }
  FuseArgs(const FuseArgs&) = delete;
  FuseArgs& operator=(const FuseArgs&) = delete;
  ~FuseArgs() { fuse_opt_free_args(&args_); }
  fuse_args* get() { return &args_; }

 private:
  std::vector<std::string> words_;
  std::vector<char*> ptrs_;
  fuse_args args_{};
};

struct FuseDestroy {
  void operator()(fuse* f) const { fuse_destroy(f); }
};
struct LoopConfigDestroy {
  void operator()(fuse_loop_config* c) const { fuse_loop_cfg_destroy(c); }
};

// Unmounts at scope exit (lazily as root, so files still open do not keep it mounted).
class Mounted {
 public:
  explicit Mounted(fuse* f) : f_(f) {}
  Mounted(const Mounted&) = delete;
  Mounted& operator=(const Mounted&) = delete;
  ~Mounted() { fuse_unmount(f_); }

 private:
  fuse* f_;
};

class SignalHandlers {
 public:
  explicit SignalHandlers(fuse_session* se) : se_(se) {}
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;
  ~SignalHandlers() { fuse_remove_signal_handlers(se_); }

 private:
  fuse_session* se_;
};

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "knext-slowfs: %s\n", message.c_str());
  return code;
}

// The mountpoint's FUSE path when it lies strictly inside the source, else "".
std::string hidden_path(const std::string& source, const std::string& mountpoint) {
  std::error_code ec;
  auto src = std::filesystem::canonical(source, ec);
  if (ec) return "";
  auto mnt = std::filesystem::canonical(mountpoint, ec);
  if (ec) return "";
  auto rel = mnt.lexically_relative(src);
  if (rel.empty() || rel == "." || *rel.begin() == "..") return "";
  return "/" + rel.string();
}

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv);
  if (!args) return fail(args.error().message + " (" + kUsage + ")", 2);
  if (args->help) {
    std::puts(kUsage);
    return 0;
  }

  knext::slowfs::Context ctx;
  ctx.source = knext::Fd(open(args->source.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!ctx.source.valid()) return fail("--source " + args->source + ": " + strerror(errno), 2);
  struct stat st {};
  if (stat(args->mountpoint.c_str(), &st) != 0) {
    return fail("--mountpoint " + args->mountpoint + ": " + strerror(errno), 2);
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail("--mountpoint " + args->mountpoint + ": not a directory", 2);
  }
  ctx.read_delay = std::chrono::microseconds(args->read_delay_us);
  ctx.max_background = static_cast<unsigned>(args->threads);
  ctx.hidden = hidden_path(args->source, args->mountpoint);

  // libfuse's own message for a missing /dev/fuse has no errno text: check it first.
  if (knext::Fd dev(open("/dev/fuse", O_RDWR | O_CLOEXEC)); !dev.valid()) {
    return fail(std::string("cannot open /dev/fuse: ") + strerror(errno), 1);
  }

  std::string options = "ro,default_permissions,fsname=knext-slowfs,subtype=knext-slowfs";
  if (geteuid() == 0) options += ",allow_other";
  FuseArgs fuse_args({"knext-slowfs", "-o", options});
  const auto& ops = knext::slowfs::passthrough_operations();
  std::unique_ptr<fuse, FuseDestroy> fs(fuse_new(fuse_args.get(), &ops, sizeof(ops), &ctx));
  if (!fs) return fail("cannot set up the FUSE session", 1);
  // Before the mount: a SIGTERM that arrives while mounting still ends in an unmount.
  fuse_session* se = fuse_get_session(fs.get());
  if (fuse_set_signal_handlers(se) != 0) return fail("cannot install signal handlers", 1);
  SignalHandlers handlers(se);
  if (fuse_mount(fs.get(), args->mountpoint.c_str()) != 0) {
    return fail("cannot mount " + args->source + " on " + args->mountpoint, 1);
  }
  Mounted mounted(fs.get());

  std::unique_ptr<fuse_loop_config, LoopConfigDestroy> loop(fuse_loop_cfg_create());
  if (!loop) return fail("out of memory", 1);
  fuse_loop_cfg_set_max_threads(loop.get(), static_cast<unsigned>(args->threads));
  int rc = fuse_loop_mt(fs.get(), loop.get());
  // A stop by signal is the normal end; libfuse reports it as the signal's number.
  if (rc < 0) rc = -rc;
  if (rc == SIGTERM || rc == SIGINT || rc == SIGHUP) rc = 0;
  if (rc != 0) return fail(std::string("session ended: ") + strerror(rc), 1);
  return 0;
}
