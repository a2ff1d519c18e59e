// Internal: the core of a queue handle whose queue lives on another host (see
// queue_protocol.hpp). Every call is a request to this node's relay, forwarded to the gateway that
// serves the queue; puts are not batched (each waits for the gateway's answer, so every error is
// the put's own). mproc::wait and the Asio face are not available for such a handle
// (errc::invalid_argument).
//
// Installed by a static initializer: every process of a program that links mproc::cluster
// opens such tokens; a program without it gets errc::invalid_argument.
//
// Thread safety: every member from any thread (queue_core's contract).
#pragma once

namespace mproc::cluster::detail {

/// Makes sure the static initializer that installs the opener is linked in (no-op).
void link_remote_queues() noexcept;

}  // namespace mproc::cluster::detail
