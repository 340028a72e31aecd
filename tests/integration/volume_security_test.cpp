// A poisoned or hostile cache volume, for real: a second uid in the volume's group (fsGroup)
// swaps the launcher's <app> directory for a symlink to its own directory in a loop while the
// launcher and node start; and the app run as a real non-root user with --user, as PID 1.
#include <doctest/doctest.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <thread>

#include "common/loopback.hpp"
#include "launcher/pages_recording.hpp"
#include "probes/http/curl_api.hpp"
#include "tests/integration/harness.hpp"

using namespace knext::test;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = KNEXT_SOURCE_ROOT;
const fs::path kApp = kRoot / "tests/fixtures/next-app/.next/standalone";
constexpr uid_t kAttackerUid = 64021;
constexpr gid_t kVolumeGid = 64022;  // the volume's fsGroup; the attacker is a member

std::string build_id() {
  std::ifstream in(kApp / ".next/BUILD_ID");
  std::string id;
  in >> id;
  return id;
}

std::string postwarm_pack_name() {
  // knext-postwarm.cjs's packName() for this node, as root.
  std::string out;
  auto node = (kRoot / ".deps/node/bin/node").string();
  std::string cmd = node +
                    " -p \"('knext-postwarm-' + process.version + '-' + process.arch + '-' + "
                    "process.versions.v8 + '-0').replace(/[^A-Za-z0-9._-]/g, '_') + '.pack'\"";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[256];
  while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  if (p != nullptr) pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::set<std::string> tree(const fs::path& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.insert(it->path().lexically_relative(dir).string());
  }
  return out;
}

// The attacker: another uid, a member of the volume's group only. kLoop: renames <app> away,
// puts a symlink to its own directory in its place and back, over and over, for the whole run.
// kAfterCheck: once told (the launcher has logged that it checked the volume), swaps for good.
enum class Attack { kLoop, kAfterCheck };

class Swapper {
 public:
  Swapper(const fs::path& root, const fs::path& evil, Attack attack) {
    std::string app = (root / "fixture").string();
    std::string stolen = (root / "fixture.stolen").string();
    std::string target = evil.string();
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ != 0) {
      close(fds[0]);
      go_ = fds[1];
      return;
    }
    close(fds[1]);
    gid_t group = kVolumeGid;
    if (setgroups(1, &group) != 0 || setresgid(group, group, group) != 0 ||
        setresuid(kAttackerUid, kAttackerUid, kAttackerUid) != 0) {
      _exit(3);
    }
    if (attack == Attack::kAfterCheck) {
      char byte;
      if (read(fds[0], &byte, 1) == 1 && rename(app.c_str(), stolen.c_str()) == 0 &&
          symlink(target.c_str(), app.c_str()) == 0) {
        _exit(0);
      }
      _exit(4);
    }
    // Mostly the real directory, so that the launcher's checks often pass, then the swap.
    timespec real{0, 2'000'000};
    timespec swapped{0, 300'000};
    for (;;) {
      nanosleep(&real, nullptr);
      if (rename(app.c_str(), stolen.c_str()) != 0) continue;
      symlink(target.c_str(), app.c_str());
      nanosleep(&swapped, nullptr);
      unlink(app.c_str());
      rename(stolen.c_str(), app.c_str());
    }
  }
  ~Swapper() {
    if (pid_ <= 0) return;
    close(go_);
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  Swapper(const Swapper&) = delete;
  Swapper& operator=(const Swapper&) = delete;
  // kAfterCheck: swap now; true when it did.
  bool swap_now() {
    if (write(go_, "x", 1) != 1) return false;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
};

struct Started {
  std::unique_ptr<Launched> launched;
  int port = 0;
};

Started start_fixture(const std::vector<std::string>& flags, bool pid1) {
  Started s;
  s.port = *knext::free_loopback_port();
  LaunchOptions options;
  options.pid_namespace = pid1;
  options.cwd = kApp.string();
  options.env = {{"PORT", std::to_string(s.port)},
                 {"HOSTNAME", "127.0.0.1"},
                 {"PATH", (kRoot / ".deps/node/bin").string() + ":" + std::getenv("PATH")}};
  s.launched = std::make_unique<Launched>(flags, options);
  return s;
}

bool serves(Started& s) {
  if (!s.launched->wait_for_err("phase gate-open", 20s)) return false;
  auto page = knext::http_get("http://127.0.0.1:" + std::to_string(s.port) + "/", 10'000);
  return page.ok() && page->status == 200;
}

std::string status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) {
      auto value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return {};
}

// A real user for --user: made once with useradd (root in CI), kept for later runs.
std::string app_user() {
  const std::string name = "knext-test-app";
  if (getpwnam(name.c_str()) == nullptr) {
    std::string cmd = "useradd --system --no-create-home --shell /usr/sbin/nologin " + name;
    if (std::system(cmd.c_str()) != 0) return {};
  }
  return name;
}

}  // namespace

TEST_CASE("a group member swapping <app> for a symlink in a loop redirects no read or write") {
  REQUIRE_MESSAGE(fs::exists(kApp / "server.js"), "run scripts/setup-fixture.sh first");
  REQUIRE_MESSAGE(geteuid() == 0, "needs root: a second uid and chown");
  TempDir dir;
  // The volume as Kubernetes mounts it with fsGroup: root:<fsGroup>, 2775.
  fs::path root = dir.path() / "volume";
  fs::create_directories(root);
  REQUIRE(chown(dir.path().c_str(), 0, 0) == 0);
  chmod(dir.path().c_str(), 0755);
  REQUIRE(chown(root.c_str(), 0, kVolumeGid) == 0);
  REQUIRE(chmod(root.c_str(), 02775) == 0);
  // The attacker's directory: what the launcher and node would find through the symlink. A FIFO
  // where the post-warm pack goes (reading it would hang node's boot), a file where node's pages
  // go, all the attacker's.
  fs::path evil = dir.path() / "evil";
  fs::path evil_build = evil / build_id();
  fs::create_directories(evil_build);
  std::string pack = postwarm_pack_name();
  REQUIRE(!pack.empty());
  REQUIRE(mkfifo((evil_build / pack).c_str(), 0666) == 0);
  std::ofstream(evil_build / "marker") << "the attacker's";
  for (const auto& p : {evil, evil_build}) {
    REQUIRE(chown(p.c_str(), kAttackerUid, kVolumeGid) == 0);
    chmod(p.c_str(), 0777);
  }
  REQUIRE(chown((evil_build / pack).c_str(), kAttackerUid, kVolumeGid) == 0);
  auto evil_before = tree(evil);

  std::string attack_name;
  Attack attack = Attack::kLoop;
  SUBCASE("swapped back and forth in a loop") {
    attack = Attack::kLoop;
    attack_name = "loop";
  }
  SUBCASE("swapped for good right after the launcher's check") {
    attack = Attack::kAfterCheck;
    attack_name = "after the check";
  }
  CAPTURE(attack_name);
  int runs = attack == Attack::kLoop ? 4 : 2;
  int on_volume = 0;
  for (int run = 0; run < runs; ++run) {
    // Each run starts from the real directory in place (as root, the test undoes the swap).
    std::error_code ec;
    if (fs::is_symlink(root / "fixture")) fs::remove(root / "fixture");
    if (fs::exists(root / "fixture.stolen"))
      fs::rename(root / "fixture.stolen", root / "fixture", ec);
    Swapper swapper(root, evil, attack);
    auto app = start_fixture(
        {"--admin-port=0", "--app-name=fixture", "--cache-dir=" + root.string()}, false);
    if (attack == Attack::kAfterCheck) {
      REQUIRE_MESSAGE(app.launched->wait_for_err("compile cache (node + post-warm): ", 10s),
                      app.launched->err());
      REQUIRE(swapper.swap_now());
    }
    bool ok = serves(app);
    CHECK_MESSAGE(ok, app.launched->err());
    app.launched->wait_for_err("compile cache on disk", 10s);
    app.launched->wait_for_err("node's pages", 5s);  // recorded on the volume once warm
    if (app.launched->err().find("(volume: ") != std::string::npos) ++on_volume;
    if (attack == Attack::kLoop) CHECK(swapper.running());
    app.launched->send(SIGTERM);
    auto result = app.launched->wait(15s);
    CHECK_MESSAGE(result.exit_code == 143, result.err);
    // Nothing was written into, nor created in, the attacker's directory.
    CHECK_MESSAGE(tree(evil) == evil_before, app.launched->err());
  }
  MESSAGE(on_volume << " of " << runs << " runs passed the volume's checks");
  if (attack == Attack::kAfterCheck) {
    CHECK(on_volume == runs);
    // Node's cache and pages went into the directory that was checked, now renamed away.
    CHECK(fs::exists(root / "fixture.stolen" / build_id() / knext::kVolumePagesName));
  } else {
    CHECK(on_volume >= 1);
  }
  struct stat fifo {};
  REQUIRE(lstat((evil_build / pack).c_str(), &fifo) == 0);
  CHECK(S_ISFIFO(fifo.st_mode));
}

TEST_CASE("--user: node and the warm-up worker run as that user, with no capabilities, as PID 1") {
  REQUIRE(geteuid() == 0);
  std::string user = app_user();
  REQUIRE_MESSAGE(!user.empty(), "useradd failed");
  const passwd* pw = getpwnam(user.c_str());
  REQUIRE(pw != nullptr);
  uid_t uid = pw->pw_uid;
  TempDir dir;
  fs::path v = dir.path() / "volume";
  fs::create_directories(v);
  chmod(dir.path().c_str(), 0755);
  chmod(v.c_str(), 0755);
  auto app = start_fixture({"--admin-port=0", "--user=" + user, "--cache-dir=" + v.string()}, true);
  REQUIRE(app.launched->wait_child_started(10s));
  pid_t launcher = app.launched->launcher_pid();
  std::set<pid_t> seen;
  std::string statuses;
  // The worker lives only until warm-up is done: look while the app boots.
  std::string launcher_cmdline = read_file("/proc/" + std::to_string(launcher) + "/cmdline");
  for (int i = 0; i < 400 && seen.size() < 2; ++i) {
    for (pid_t child : children_of(launcher)) {
      // Until its exec the child is a copy of the launcher, still root: look once it is not.
      std::string cmdline = read_file("/proc/" + std::to_string(child) + "/cmdline");
      if (cmdline.empty() || cmdline == launcher_cmdline) continue;
      if (!seen.insert(child).second) continue;
      std::string uids = status_field(child, "Uid");
      std::string caps = status_field(child, "CapEff");
      statuses += std::to_string(child) + ": Uid " + uids + ", CapEff " + caps + "\n";
      std::string expect = std::to_string(uid);
      CHECK_MESSAGE(uids == expect + "\t" + expect + "\t" + expect + "\t" + expect, statuses);
      CHECK_MESSAGE(caps == "0000000000000000", statuses);
      CHECK(status_field(child, "Gid").rfind(std::to_string(pw->pw_gid) + "\t", 0) == 0);
    }
    std::this_thread::sleep_for(5ms);
  }
  CHECK_MESSAGE(seen.size() == 2, statuses);  // node and the warm-up worker
  REQUIRE_MESSAGE(serves(app), app.launched->err());
  app.launched->wait_for_err("compile cache on disk", 10s);
  app.launched->send(SIGTERM);
  auto result = app.launched->wait(15s);
  CHECK(result.exit_code == 143);
  CHECK(result.err.find("runs as root") == std::string::npos);
  // What the launcher made (<app>, <build-id>: 0700) and node wrote on the volume is the user's
  // and writable by no one else.
  int files = 0;
  for (auto it = fs::recursive_directory_iterator(v); it != fs::recursive_directory_iterator();
       ++it) {
    const auto& entry = *it;
    struct stat st {};
    REQUIRE(lstat(entry.path().c_str(), &st) == 0);
    CHECK_MESSAGE(st.st_uid == uid, entry.path());
    CHECK_MESSAGE((st.st_mode & 022) == 0, entry.path());
    if (S_ISDIR(st.st_mode) && it.depth() < 2) {
      CHECK_MESSAGE((st.st_mode & 07777) == 0700, entry.path());
    }
    if (S_ISREG(st.st_mode)) {
      CHECK_MESSAGE((st.st_mode & 077) == 0, entry.path());
      ++files;
    }
  }
  CHECK(files > 2);  // the post-warm pack, node's entries, node's pages
}

TEST_CASE("root: one warning naming --user; --refuse-root and an unknown user exit 2 with a line") {
  REQUIRE(geteuid() == 0);
  LaunchOptions options;
  options.pid_namespace = false;
  auto warned = run_launcher({"--admin-port=0", "--", "true"}, options);
  CHECK(warned.exit_code == 0);
  int warnings = 0;
  for (const auto& line : lines(warned.err)) {
    if (line.find("runs as root") != std::string::npos) {
      ++warnings;
      CHECK(line.find("--user") != std::string::npos);
    }
  }
  CHECK_MESSAGE(warnings == 1, warned.err);

  auto refused = run_launcher({"--admin-port=0", "--refuse-root", "--", "true"}, options);
  CHECK(refused.exit_code == 2);
  CHECK_MESSAGE(lines(refused.err).size() == 1, refused.err);
  CHECK(refused.err.find("--refuse-root") != std::string::npos);

  auto unknown = run_launcher({"--user=no-such-user-here", "--", "true"}, options);
  CHECK(unknown.exit_code == 2);
  CHECK_MESSAGE(lines(unknown.err).size() == 1, unknown.err);
  CHECK(unknown.err.find("--user") != std::string::npos);
}
