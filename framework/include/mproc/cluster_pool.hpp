// mproc/cluster_pool.hpp — a pool whose workers live on other nodes of the cluster.
//
//   int square(int x) { return x * x; }
//   MPROC_ENTRY(square);                                    // in every program of the cluster
//   mproc::pool_options options;
//   options.workers = 4;                                    // worker processes on each node
//   mproc::pool pool = mproc::cluster::make_pool({b, c}, options);   // b, c: remote_node
//   auto squares = pool.map(square, inputs);                // apply_async, imap, ... as usual
//
// It is an ordinary mproc::pool: the same calls, results and errors. Every node runs the chunks
// it gets in a pool of its own worker processes (options.workers each; 0: 2), which keeps that
// pool's rules (a worker that dies is replaced, its chunk retried there). This node sends each
// node at most two chunks per worker at a time, so faster nodes get more.
//
// Never hangs when a node is lost (it dies, or is cut off: noticed within 1.4 s by heartbeat):
// the chunks it held go to the other nodes, each at most options.retries times (default once),
// then fail with errc::node_lost; with no node left, everything unfinished fails with node_lost.
// Not across nodes (errc::invalid_argument): options.initializer and maxtasksperchild.
//
// Thread safety: as mproc::pool. Destructor: as mproc::pool (terminate(): unfinished results fail
// with errc::closed; chunks already running on other nodes finish there unseen). Destroy it
// before the node.
#pragma once

#include <vector>

#include "mproc/cluster.hpp"
#include "mproc/pool.hpp"

namespace mproc::cluster {

/// A pool over the workers of `nodes`. Throws mproc::error: invalid_argument (no node, an empty
/// handle, an initializer or maxtasksperchild).
mproc::pool make_pool(const std::vector<remote_node>& nodes, pool_options options = {});

}  // namespace mproc::cluster
