// Internal: the node agent, the one actor a listening node publishes on its TCP port.
//
// Until a peer node has proven the cookie (cookie_proof.hpp) the agent answers it nothing but a
// challenge; afterwards it serves that node's requests (spawn by name in this process). Proof is
// kept per peer node id, so every actor of a node that joined may use the agent.
//
// Thread safety: an actor; its state is touched only by its own handlers.
#pragma once

#include <caf/atom.hpp>
#include <caf/behavior.hpp>
#include <caf/node_id.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <deque>
#include <set>
#include <string>
#include <unordered_map>

namespace mproc::cluster::detail {

using challenge_atom = caf::atom_constant<caf::atom("mp_chall")>;
using prove_atom = caf::atom_constant<caf::atom("mp_prove")>;
/// -> std::string: where the node's processes reach its relay (relay.hpp), for queue handles.
using relay_path_atom = caf::atom_constant<caf::atom("mp_rpath")>;

struct agent_state {
  std::string cookie;
  /// Open challenges by peer node; bounded so that peers without the cookie cannot grow it.
  std::unordered_map<caf::node_id, std::string> challenges;
  std::deque<caf::node_id> challenge_order;
  std::set<caf::node_id> joined;
  /// Chunks of other nodes' pools running here, by token.
  std::unordered_map<std::uint64_t, caf::response_promise> chunks;
  std::uint64_t next_chunk = 0;
  static inline const char* name = "mproc.cluster.agent";
};

caf::behavior agent_behavior(caf::stateful_actor<agent_state>* self, std::string cookie);

}  // namespace mproc::cluster::detail
