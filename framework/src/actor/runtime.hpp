// Internal: the actor machinery of one process: its caf::actor_system, its router and its
// runtime actor (which spawns actors by name for other processes and, in the node's root
// process, keeps the node-wide names of mproc/actor_registry.hpp).
//
// One per process, made on first use; a forked child makes its own (the parent's threads do not
// exist there, so the inherited object is never touched again). It ends at the destruction of
// the process's node (detail::at_node_shutdown).
//
// Thread safety: all members from any thread.
#pragma once

#include <chrono>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/local_actor.hpp>
#include <memory>
#include <set>
#include <string>

#include "router.hpp"

namespace mproc::detail {

/// Spawns the actor type registered under `name` in self's system; for a non-empty `ifs` the
/// actor's interface must be exactly that. Errors are errc::invalid_argument naming the cause.
caf::expected<caf::strong_actor_ptr> spawn_registered(caf::local_actor* self, const std::string& name,
                                                      const caf::message& args, const std::set<std::string>& ifs);

/// Heartbeat settings of CAF's remoting in every process (see configure_remoting in runtime.cpp).
inline constexpr std::chrono::milliseconds remote_heartbeat_interval{200};
inline constexpr std::chrono::milliseconds remote_connection_timeout{1200};

class actor_runtime {
 public:
  /// The runtime of the calling process. Throws errc::no_node without a node.
  static actor_runtime& instance();
  /// The runtime if it has started in this process, else nullptr.
  static actor_runtime* started() noexcept;

  caf::actor_system& system() noexcept { return *system_; }
  actor_router& router() noexcept { return *router_; }
  /// The runtime actor that keeps the node's names: ours in the root, the parent's in a host.
  caf::actor registry_actor();
  /// Makes this process a host whose life ends with the first actor it spawns.
  void set_dedicated() noexcept { dedicated_ = true; }
  bool dedicated() const noexcept { return dedicated_; }

  ~actor_runtime();

 private:
  actor_runtime();
  void shutdown() noexcept;

  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  std::shared_ptr<actor_router> router_;
  caf::actor runtime_actor_;
  bool dedicated_ = false;
};

}  // namespace mproc::detail
