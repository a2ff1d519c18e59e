// mproc/actors/directory.hpp — names for actors, so a restarted actor can be found again.
//
//   mproc::actors::publish(sys, "stage.2", handle);      // replaces what the name held
//   caf::actor a = mproc::actors::lookup(sys, "stage.2"); // null handle when nothing is published
//
// The supervisor publishes each child under its name after every (re)start; pipeline stages find
// their downstream through it.
//
// Scope: for the actor system of an mproc node (mproc::actor_system()) names are node-wide: they
// are mproc::register_actor / lookup_actor names (mproc/actor_registry.hpp), visible from every
// process of the node. For any other actor system (one a test makes by hand) they are known
// within that system only.
//
// Thread safety: all functions may be called from any thread.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <mproc/actor_registry.hpp>
#include <map>
#include <mutex>
#include <string>

namespace mproc::actors {

namespace detail {
struct local_directory {
  std::mutex mutex;
  // Weak: a name must not keep its actor alive (actor_system's destructor waits for every actor).
  std::map<std::pair<const caf::actor_system*, std::string>, caf::actor_addr> names;
  static local_directory& get() {
    static local_directory d;
    return d;
  }
};
}  // namespace detail

/// Publishes `handle` under `name`, replacing the previous one; a null handle removes the name.
inline void publish(caf::actor_system& sys, const std::string& name, const caf::actor& handle) {
  if (mproc::is_node_actor_system(sys)) return mproc::register_actor(name, handle);
  auto& d = detail::local_directory::get();
  std::lock_guard guard{d.mutex};
  // Names of actors that ended (of this or of an ended system) go as new ones come: the map
  // stays as large as the live names, however many systems and restarts a process sees.
  std::erase_if(d.names, [](const auto& entry) { return !caf::actor_cast<caf::actor>(entry.second); });
  if (handle) d.names[{&sys, name}] = caf::actor_cast<caf::actor_addr>(handle);
  else d.names.erase({&sys, name});
}

/// The handle published under `name`, or a null handle.
inline caf::actor lookup(caf::actor_system& sys, const std::string& name) {
  if (mproc::is_node_actor_system(sys)) return mproc::lookup_actor(name).value_or(caf::actor{});
  auto& d = detail::local_directory::get();
  std::lock_guard guard{d.mutex};
  auto it = d.names.find({&sys, name});
  return it == d.names.end() ? caf::actor{} : caf::actor_cast<caf::actor>(it->second);
}

}  // namespace mproc::actors
