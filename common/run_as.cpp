#include "common/run_as.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace knext {
namespace {

template <class T>
bool parse_id(std::string_view text, T& out) {
  unsigned long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value >= 0xFFFFFFFFul) return false;
  out = static_cast<T>(value);
  return true;
}

bool lookup(std::string_view name_or_uid, bool by_uid, uid_t uid, passwd& pw,
            std::vector<char>& buf) {
  passwd* found = nullptr;
  std::string name(name_or_uid);
  for (buf.resize(4096);; buf.resize(buf.size() * 2)) {
    int err = by_uid ? getpwuid_r(uid, &pw, buf.data(), buf.size(), &found)
                     : getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (err != ERANGE || buf.size() > (1u << 20)) return err == 0 && found != nullptr;
  }
}

std::vector<gid_t> groups_of(const char* name, gid_t gid) {
  std::vector<gid_t> groups(32);
  for (int tries = 0; tries < 8; ++tries) {
    int n = static_cast<int>(groups.size());
    if (getgrouplist(name, gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<size_t>(n));
      return groups;
    }
    groups.resize(static_cast<size_t>(n) > groups.size() ? static_cast<size_t>(n)
                                                         : groups.size() * 2);
  }
  return {gid};
}

}  // namespace

Expected<RunAs> resolve_user(std::string_view spec) {
  const std::string allowed = "; use a user name, or UID or UID:GID (numbers)";
  std::string_view user = spec.substr(0, spec.find(':'));
  std::string_view group = spec.find(':') == std::string_view::npos
                               ? std::string_view{}
                               : spec.substr(spec.find(':') + 1);
  if (user.empty() || (spec.find(':') != std::string_view::npos && group.empty())) {
    return Error{"--user: '" + std::string(spec) + "' is not allowed" + allowed};
  }
  RunAs who;
  bool numeric = parse_id(user, who.uid);
  passwd pw{};
  std::vector<char> buf;
  bool known = lookup(user, numeric, who.uid, pw, buf);
  if (!numeric && !known) {
    return Error{"--user: no user named '" + std::string(user) + "' in the passwd database" +
                 allowed};
  }
  if (known) {
    who.uid = pw.pw_uid;
    who.gid = pw.pw_gid;
    who.name = pw.pw_name;
  } else {
    who.gid = static_cast<gid_t>(who.uid);
    who.name = std::string(user);
  }
  if (!group.empty()) {
    if (!parse_id(group, who.gid)) {
      return Error{"--user: group '" + std::string(group) + "' is not a number" + allowed};
    }
  }
  who.groups = known ? groups_of(pw.pw_name, who.gid) : std::vector<gid_t>{who.gid};
  return who;
}

Status app_user_allowed(const std::optional<RunAs>& user, bool refuse_root, uid_t current_uid) {
  uid_t uid = user ? user->uid : current_uid;
  if (user && current_uid != 0 && uid != current_uid) {
    return Error{"--user " + user->name +
                 ": switching users needs the launcher to run as root (it runs as uid " +
                 std::to_string(current_uid) + ")"};
  }
  if (uid == 0 && refuse_root) {
    return Error{"--refuse-root: the app would run as root (uid 0); pass --user NAME|UID[:GID]"};
  }
  return ok_status();
}

int drop_privileges(const RunAs& who) {
  // Raw syscalls: the forked child has one thread, so glibc's setxid broadcast to all threads
  // (and the locks it takes, which another thread may have held at the fork) is not needed.
  if (syscall(SYS_setgroups, who.groups.size(), who.groups.data()) != 0) return errno;
  if (syscall(SYS_setresgid, who.gid, who.gid, who.gid) != 0) return errno;
  if (syscall(SYS_setresuid, who.uid, who.uid, who.uid) != 0) return errno;
  return 0;
}

}  // namespace knext
