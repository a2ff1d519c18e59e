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

#include <caf/actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

/// The actor types every figure measures against, spawnable by name in any process of the
/// benchmark (a host, or another node: cluster_bench.hpp):
///   "bench_echo"     answers an int x with x + 1
///   "bench_counter"  counts the ints it is sent; answers count_atom with the count (int64)

/// µs per request/response of an int to a bench_echo, over `n` requests after 200 to warm up.
double actor_request_rtt_us(const caf::actor& echo, int n);
/// msg/s of `n` one-way ints to a bench_counter, until its count says every one arrived: that
/// count must equal `expected` + n (throws std::runtime_error otherwise), and `expected` grows by n.
double actor_oneway_msgs_per_s(const caf::actor& counter, int n, std::int64_t& expected);

/// `self` is this binary (CAF remoting's server image).
std::vector<figure> actor_figures(mproc::node& node, const std::string& self, bool quick);

}  // namespace bench
