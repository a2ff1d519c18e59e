#include "process_identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace mproc::detail {
namespace {

struct stat_fields {
  char state = '?';
  std::uint64_t start_time = 0;
};

/// State (field 3) and start time (field 22) of /proc/<pid>/stat; state '?' when it is gone.
stat_fields read_stat(pid_t pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  stat_fields out;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return out;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return out;
  unsigned long long start = 0;
  char state = '?';
  // After ") ": state, then fields 4..21 skipped, then starttime.
  if (std::sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state,
                  &start) != 2)
    return out;
  out.state = state;
  out.start_time = start;
  return out;
}

}  // namespace

process_identity this_process() {
  // Cached per thread, keyed by pid: a fork child computes its own on first use.
  thread_local process_identity cached;
  pid_t pid = ::getpid();
  if (cached.pid != pid) cached = {static_cast<std::int32_t>(pid), read_stat(pid).start_time};
  return cached;
}

bool still_running(const process_identity& p) {
  if (p.empty()) return false;
  auto s = read_stat(p.pid);
  return s.state != '?' && s.state != 'Z' && s.state != 'X' && s.start_time == p.start_time;
}

}  // namespace mproc::detail
