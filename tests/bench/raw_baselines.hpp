// Whole-process CPU placement and the raw AF_UNIX ping-pong baseline, shared by the latency figures (pipes,
// actors): latency is only compared under the same placement, in the same run (DESIGN.md §5).
// (Placing the calling thread: bench::cpu0_placement in bench_support.hpp.)
#pragma once

#include <sched.h>
#include <sys/types.h>

namespace bench {

/// Sets the affinity of every thread of process `pid` (from /proc/<pid>/task): CPU 0 only when
/// `pinned`, else every CPU. Threads created later inherit it from their creator.
void place_all_threads(pid_t pid, bool pinned);

/// µs per round trip of 8 bytes between this thread and a forked child over a socketpair.
double raw_af_unix_rtt_us(int n);

}  // namespace bench
