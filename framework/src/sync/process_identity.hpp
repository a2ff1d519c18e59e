// A process as the sync primitives record it: pid and start time, so that a recycled pid is
// never taken for the process that held something.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace mproc::detail {

struct process_identity {
  std::int32_t pid = 0;          // 0: nobody
  std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)

  bool empty() const noexcept { return pid == 0; }
  friend bool operator==(const process_identity&, const process_identity&) = default;
};

/// The calling process.
process_identity this_process();
/// False once the process has exited (a zombie counts as exited) or its pid belongs to another.
bool still_running(const process_identity& p);

}  // namespace mproc::detail
