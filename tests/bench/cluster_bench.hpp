// Cluster figures of mproc_bench (issue 8, item 7): two nodes on loopback. This process joins a
// second node program through mproc::cluster::join and spawns the measured actors there; the
// node program is this binary exec'd afresh as `--cluster-node` (mproc-node's main, knowing the
// bench's actor types). Each round also measures CAF 0.17's own remoting (caf_remoting_bench.hpp,
// publish/remote_actor with no mproc at all), with as many messages:
//
//   cluster.request.rtt         µs per request/response of an int to an echo actor on the other
//                               node, placement left to the kernel; baseline
//                               caf_remoting.request.rtt.unpinned.cluster_run
//   cluster.oneway.throughput   one-way int messages per second to a counting actor on the other
//                               node, until its count (checked) says all arrived; baseline
//                               caf_remoting.oneway.throughput.cluster_run
//
// Both go over CAF's BASP on loopback TCP, so the ratio shows what mproc's cluster layer (the
// cookie, the heartbeat, mproc's actor system configuration) costs or saves against plain CAF.
// It starts CAF's threads in this process.
#pragma once

#include <string>
#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

/// `self` is this binary (the other node's image and CAF remoting's server image).
std::vector<figure> cluster_figures(mproc::node& node, const std::string& self, bool quick);

/// The other node's side of `--cluster-node ARGS...`: mproc-node's main (mproc/cluster_node_main.hpp)
/// with ARGS, in a program that registers the bench's actors. Returns the exit code.
int cluster_node_main(int argc, char** argv);

}  // namespace bench
