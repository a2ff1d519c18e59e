// Internal: the serving side of a queue used from another host (see queue_protocol.hpp).
//
// A gateway is an actor in the process that sent a queue handle to another node: it holds that
// process's own core of the queue (the owner's store, or its connection to the owner) and runs
// the calls that come from the other node on it. Calls that would wait (a get on an empty
// queue, a put on a full bounded one, a join) go to a detached actor of their own, so a waiting
// get never holds up another process's put; they wait in slices of 100 ms and give up with
// node_closed when this node ends. One gateway per queue and remote node; it ends when that node
// is lost or leaves, or with this node, and with it the writer presence it held for that node.
//
// Thread safety: queue_gateway_for from any thread; the gateway is an actor.
#pragma once

#include <caf/actor.hpp>

#include <memory>
#include <string>

#include "mproc/detail/queue_core.hpp"

namespace mproc::cluster::detail {

struct gateway_ref {
  caf::actor gateway;
  std::string capability;
};

/// The gateway serving `core` to the node whose agent is `peer_agent` (made on first use).
gateway_ref queue_gateway_for(const std::shared_ptr<mproc::detail::queue_core>& core, const caf::actor& peer_agent);

}  // namespace mproc::cluster::detail
