#pragma once
// knext-slowfs: a read-only FUSE passthrough that sleeps before every read request, so a
// benchmark can run an app (and node) from storage as slow as a container layer or a network
// volume. Metadata is not delayed; data read once stays in the kernel's page cache until it is
// evicted, as on a real disk.
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse.h>

#include <chrono>
#include <string>

#include "common/fd.hpp"

namespace knext::slowfs {

// What the operations share (the FUSE private_data); outlives the session.
struct Context {
  Fd source;  // the passed-through directory, opened before the mount covers it
  std::chrono::microseconds read_delay{0};
  // FUSE path ("/a/b") of the mountpoint when it lies inside the source: hidden, or a lookup
  // through it would come back into this daemon.
  std::string hidden;
  unsigned max_background = 32;  // read requests the kernel keeps in flight
};

const fuse_operations& passthrough_operations();

}  // namespace knext::slowfs
