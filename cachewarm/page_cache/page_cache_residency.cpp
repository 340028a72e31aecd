#include "cachewarm/page_cache/page_cache_residency.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cachewarm/dir_ops.hpp"
#include "common/fd.hpp"

namespace knext {
namespace {

// Owns one mapping; unmapped exactly once.
class Mapping {
 public:
  Mapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (valid()) munmap(addr_, length_);
  }
  bool valid() const { return addr_ != MAP_FAILED; }
  void* get() const { return addr_; }

 private:
  void* addr_;
  size_t length_;
};

}  // namespace

EvictResult evict_from_page_cache(const std::vector<std::string>& paths) {
  EvictResult out;
  for (const auto& path : paths) {
    Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    int err = fd.valid() ? posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED) : errno;
    if (err == 0) {
      ++out.evicted;
      continue;
    }
    ++out.failed;
    if (out.first_error.empty()) out.first_error = errno_error(path, err).message;
  }
  return out;
}

Expected<double> resident_fraction(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return errno_error(path, errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error(path, errno);
  if (!S_ISREG(st.st_mode)) return Error{path + ": not a regular file", EINVAL};
  if (st.st_size == 0) return 1.0;
  auto length = static_cast<size_t>(st.st_size);
  Mapping map(mmap(nullptr, length, PROT_READ, MAP_SHARED, fd.get(), 0), length);
  if (!map.valid()) return errno_error(path, errno);
  auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t pages = (length + page - 1) / page;
  std::vector<unsigned char> vec(pages);
  if (mincore(map.get(), length, vec.data()) != 0) return errno_error(path, errno);
  size_t resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  return static_cast<double>(resident) / static_cast<double>(pages);
}

}  // namespace knext
