// Internal: the relay, one actor in the process that listens for other nodes (the node process).
// Other processes of this node cannot reach other hosts themselves (CAF's remoting runs in the
// listening process only), so their calls to a queue served from another host go to the relay,
// found by name in the node's registry (a process not yet connected to the node's actors
// connects to this process first: the path travels in the queue's token), and the relay forwards each to the gateway that serves it
// (see queue_protocol.hpp). It answers a call with node_lost when that host is lost.
//
// It also keeps remote writers honest: a process here that holds a handle that can put
// registers a presence actor with the relay, which tells the gateway when the actor ends — with
// the handle, or with its process, SIGKILL included.
//
// Thread safety: start_relay and add_relay_route from any thread; the relay is an actor.
#pragma once

#include <caf/actor.hpp>

#include <string>
#include <system_error>

namespace mproc::cluster::detail {

inline constexpr const char* relay_name = "mproc.cluster.relay";

/// Starts this process's relay, registers it under relay_name and listens for the node's
/// processes (once per node).
void start_relay(std::error_code& ec);
/// Where a process of this node connects to reach the relay (this process's actor socket; a
/// process that is not connected to the node's actors yet connects there first). Empty before
/// start_relay.
std::string relay_socket_path();
/// Calls naming `capability` go to `gateway` (a handle sent to a process of this node).
void add_relay_route(const std::string& capability, const caf::actor& gateway);

}  // namespace mproc::cluster::detail
