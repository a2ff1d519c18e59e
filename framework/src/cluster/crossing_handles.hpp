// Internal: queue handles and pipe ends among the arguments of a process started on another node
// (remote_node::spawn_process).
//
// On the starting side the arguments are encoded with a queue_exporter: each queue handle
// becomes a handle served by a gateway here (queue_gateway.hpp), and each pipe end's descriptor
// gets a bridge (pipe_bridge.hpp). The serving node routes the gateways through its relay
// (relay.hpp), makes a socket pair and a bridge for every pipe end, and gives the process the
// other ends, at the indices the encoding refers to. Any other descriptor (shared memory, a
// lock) cannot cross hosts: errc::invalid_argument.
//
// Thread safety: free functions; the objects are used by one thread.
#pragma once

#include <caf/actor.hpp>

#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "mproc/detail/transfer.hpp"

namespace mproc::cluster::detail {

/// What the arguments carry besides their bytes (sent with them).
struct crossing_handles {
  std::vector<std::string> capabilities;  // one per gateway
  std::vector<caf::actor> gateways;
  std::vector<caf::actor> bridges;  // one per pipe end, in descriptor order
};

/// Starting side: encodes with `encode` for the node whose agent is `peer_agent` and whose relay
/// listens at `peer_relay_socket` (there). `at_end` gets
/// what must run once the process has ended (queue tickets). Throws mproc::error
/// (invalid_argument for a descriptor that is not a pipe end; the bridges made so far end).
std::string encode_for_node(const caf::actor& peer_agent, const std::string& peer_relay_socket,
                            const std::function<std::vector<std::byte>()>& encode,
                            crossing_handles& out, mproc::detail::transfer_bundle& at_end);
/// Starting side: the serving node answered with its bridges (in order).
void connect_bridges(const crossing_handles& ours, const std::vector<caf::actor>& theirs);

/// Serving side: routes the gateways, bridges every pipe end; `passed` gets the process's
/// descriptors, `bridges` our side of each bridge.
void accept_handles(const crossing_handles& in, mproc::detail::transfer_bundle& passed,
                    std::vector<caf::actor>& bridges, std::error_code& ec);
/// Either side: the process did not start; these bridges end.
void abandon_bridges(const std::vector<caf::actor>& bridges) noexcept;

}  // namespace mproc::cluster::detail
