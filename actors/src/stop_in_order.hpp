// Stopping actors one after the other, each within a bound: the supervisor's way to stop its
// children (for a group restart, when it gives up or is told to stop, and when it is killed).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/timespan.hpp>

#include <vector>

namespace mproc::actors::detail {

struct stop_item {
  caf::actor who;
  caf::timespan bound;  // how long to wait for its down_msg after exit(user_shutdown)
};

/// Asks the stopper to begin; it replies stopped_atom once the last actor is down (or killed).
using stop_atom = caf::atom_constant<caf::atom("stopkids")>;
using stopped_atom = caf::atom_constant<caf::atom("stopped")>;

/// An actor that, on (stop_atom), stops `items` in the order given: exit(user_shutdown), waits
/// up to the item's bound for its down_msg, else exit(kill) and goes on without waiting more (an
/// actor stuck in a handler cannot be forced off its thread). Replies stopped_atom, then quits.
/// A separate actor, so the supervisor stays responsive meanwhile, and so the stop still happens
/// when the supervisor itself was killed.
caf::actor spawn_stopper(caf::actor_system& sys, std::vector<stop_item> items);

}  // namespace mproc::actors::detail
