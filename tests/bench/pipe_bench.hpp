// Pipe figures of mproc_bench: round-trip latency beside raw AF_UNIX ping-pong under the same
// CPU placement, measured in the same run, round by round:
//
//   pipe.int64.rtt.pinned     µs per round trip, both processes pinned to CPU 0;
//                             baseline raw.af_unix.rtt.pinned
//   pipe.int64.rtt.unpinned   the same without pinning; baseline raw.af_unix.rtt.unpinned
//
// The child is started with start_method::fork (pipe ends passed by inheritance) and echoes
// every int64 incremented; the raw baseline is a forked child doing read()/write() of 8 bytes.
#pragma once

#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

std::vector<figure> pipe_figures(mproc::node& node, bool quick);

}  // namespace bench
