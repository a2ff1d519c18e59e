// Internal: a pipe end given to a process on another host.
//
// A pipe is a socket pair of one host, so it cannot stretch to another. Instead the end stays
// here, and a bridge carries its messages: on this host one side reads what our peer end sends
// and writes what comes back; on the other host the node makes a new socket pair, gives one end
// to the process (it sees an ordinary pipe end) and bridges the other. Each side is an actor,
// with a thread that reads from its socket and forwards each message (type id and encoding, so a
// large one goes as a body again on the other side), at most 32 messages or 8 MiB
// unacknowledged, and a thread that writes what comes (a slow reader holds up the writer, as a
// local pipe would, without blocking a CAF thread).
//
//   user's end ◀─socket─▶ bridge (A) ◀──CAF remoting──▶ bridge (B) ◀─socket─▶ process's end
//
// Ends: a side whose socket reports end of stream tells the other, which shuts down its socket
// for writing once it wrote everything before, so each reader sees end_of_stream after
// everything sent before. A side ends once both directions are done, when writing into its
// socket fails while it has nothing more to read, when the other side is lost (heartbeat) or
// ends, or with the node; its socket closes then (after writing what had come, for at most 1 s).
// Values with descriptors inside (pipe ends, shared memory) cannot cross: the receiver's recv
// reports errc::bad_message.
//
// Not a detached actor: the other node holds a proxy of it, so CAF's remoting monitors it, and a
// down message from it (holding it) can stay in CAF's broker when that leaks at exit; CAF would
// wait for ever for a detached actor held there. The messages between the sides are anonymous.
//
// Thread safety: start_pipe_bridge from any thread; the bridge is an actor.
#pragma once

#include <caf/actor.hpp>
#include <caf/atom.hpp>

#include <memory>

#include "mproc/detail/pipe_core.hpp"

namespace mproc::cluster::detail {

using bridge_peer_atom = caf::atom_constant<caf::atom("mp_bpeer")>;

/// Starts one side of a bridge over `end`, this host's socket. With `peer` (the other side) it
/// forwards at once; without, once it gets (bridge_peer_atom, peer).
caf::actor start_pipe_bridge(std::shared_ptr<mproc::detail::pipe_core> end, caf::actor peer = {});

}  // namespace mproc::cluster::detail
