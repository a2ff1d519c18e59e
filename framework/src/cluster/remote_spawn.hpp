// Internal: the serving side of remote_process. A process spawned for another node gets an actor
// here that answers join / status / signal requests, learns the exit from a thread that joins the
// process, and terminates the process when the requesting node's keeper goes down (that node
// ended or was lost): no orphans across hosts. The node's end stops them all.
//
// Thread safety: start_remote_process is called by the agent; the rest are actor handlers.
#pragma once

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>

#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "crossing_handles.hpp"

namespace mproc::cluster::detail {

using spawn_process_atom = caf::atom_constant<caf::atom("mp_spproc")>;
using join_atom = caf::atom_constant<caf::atom("mp_join")>;
using status_atom = caf::atom_constant<caf::atom("mp_status")>;
using signal_atom = caf::atom_constant<caf::atom("mp_signal")>;

/// Starts the function registered as `entry` with encoded `args` on this node; `handles` are the
/// queues and pipe ends among them (crossing_handles.hpp). Returns the process's actor, its pid
/// and our side of each pipe bridge; errc::unknown_entry, spawn_failed, ... as caf::error.
caf::expected<std::tuple<caf::actor, int, std::vector<caf::actor>>> start_remote_process(
    const std::string& entry, const std::string& args, const caf::actor& keeper, const crossing_handles& handles);

/// Starting side: runs `fn` once the process whose actor is `process_actor` has ended, or its
/// node is lost.
void at_remote_exit(const caf::actor& process_actor, std::function<void()> fn);

}  // namespace mproc::cluster::detail
