// Internal: actors that must end with the node. CAF 0.17 crashes when its system is destroyed
// while an actor that another process or node knows (CAF registered it when it was sent) is
// still alive, so such actors are ended from a node-shutdown hook, which runs before the actor
// system ends.
//
// Thread safety: both functions from any thread.
#pragma once

#include <caf/actor.hpp>

namespace mproc::cluster::detail {

/// Ends `actor` at the node's end, unless it ended before.
void end_with_node(const caf::actor& actor);
/// An actor that does nothing but live until end_now or the node's end: a stand-in for a
/// lifetime that other actors monitor (a joined node, a handle that can put).
caf::actor spawn_lifetime_marker();
/// Ends `actor` now; a no-op once this process's actor system is gone.
void end_now(const caf::actor& actor) noexcept;

}  // namespace mproc::cluster::detail
