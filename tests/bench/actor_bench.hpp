// Actor figures of mproc_bench (issue 4), beside their baselines measured in the same run:
//
//   actor.request.rtt.pinned     µs per request/response of an int between a scoped actor of the
//                                node's process and an actor in a host process, every thread of
//                                both processes pinned to CPU 0; baseline raw.af_unix.rtt.pinned
//   actor.request.rtt.unpinned   the same without pinning; baseline raw.af_unix.rtt.unpinned
//   actor.oneway.throughput      one-way int messages per second from the node's process to a
//                                counting actor in a host; the final count is checked;
//                                baseline caf_remoting.oneway.throughput
//
// CAF remoting's own figures (caf_remoting_bench.hpp) are measured in the same rounds and
// reported beside them: the issue asks for >= 2x its throughput and a faster round trip.
//
// Run last: it starts CAF's threads in the benchmark process.
#pragma once

#include <string>
#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

/// `self` is this binary (CAF remoting's server image).
std::vector<figure> actor_figures(mproc::node& node, const std::string& self, bool quick);

}  // namespace bench
