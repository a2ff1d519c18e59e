// Stopping actors one after the other, each within a bound: the supervisor's way to stop its
// children (for a group restart, when it gives up or is told to stop, and when it is killed).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/timespan.hpp>

#include <vector>

namespace mproc::actors::detail {

struct stop_item {
  caf::actor who;
  caf::timespan bound;  // how long to wait for its down_msg after exit(user_shutdown)
};

/// Sent to `notify` once the stop is done.
using stopped_atom = caf::atom_constant<caf::atom("stopped")>;

/// Spawns an actor that stops `items` in the order given: exit(user_shutdown), waits up to the
/// item's bound for its down_msg, else exit(kill) and goes on without waiting more (an actor
/// stuck in a handler cannot be forced off its thread). Then it sends stopped_atom to `notify`
/// (if set and still there) and quits. A separate actor, so the supervisor stays responsive
/// meanwhile, and so the stop still happens when the supervisor itself was killed.
/// `notify` is held weakly, and the stopper is told to start anonymously: the end of an actor
/// system strands a stopper still waiting, and waits for every detached actor's object (the
/// supervisor's), which such a stopper must not keep (docs/rationale.md).
void stop_in_order(caf::actor_system& sys, std::vector<stop_item> items, caf::actor_addr notify = {});

}  // namespace mproc::actors::detail
