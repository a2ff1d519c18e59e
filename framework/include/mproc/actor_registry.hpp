// mproc/actor_registry.hpp — names for actors, known in every process of the node.
//
//   mproc::register_actor("calc", calc);                        // in any process of the node
//   auto calc = mproc::lookup_actor<calc_actor>("calc");         // in any other: std::optional
//
// The names live in the node's own process (the root of the node's processes); a name holds its
// actor until the actor ends (then the name disappears) or is registered again (replaced).
// lookup_actor<Handle> checks that the registered actor's interface is exactly Handle's; a
// dynamically typed caf::actor accepts any registered actor.
//
// Errors (mproc::error, or the error_code overloads): wrong_type (interface differs),
// node_closed (the node's process is gone), timeout (no answer within `timeout`).
//
// Thread safety: all functions may be called from any thread.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <system_error>

#include "mproc/actor_runtime.hpp"
#include "mproc/error.hpp"

namespace mproc {
namespace detail {
void register_actor_impl(const std::string& name, caf::strong_actor_ptr actor, std::set<std::string> ifs,
                         std::chrono::milliseconds timeout, std::error_code& ec);
caf::strong_actor_ptr lookup_actor_impl(const std::string& name, const std::set<std::string>& ifs, bool any_ifs,
                                        std::chrono::milliseconds timeout, std::error_code& ec);
}  // namespace detail

/// Publishes `handle` under `name` for the whole node (replacing an earlier registration); a
/// null handle removes the name.
template <class Handle>
void register_actor(const std::string& name, const Handle& handle, std::error_code& ec,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  detail::register_actor_impl(name, caf::actor_cast<caf::strong_actor_ptr>(handle),
                              actor_system().message_types<Handle>(), timeout, ec);
}
template <class Handle>
void register_actor(const std::string& name, const Handle& handle,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::error_code ec;
  register_actor(name, handle, ec, timeout);
  throw_if(ec, "mproc::register_actor " + name);
}

/// The actor registered under `name`, or nullopt when there is none.
template <class Handle = caf::actor>
std::optional<Handle> lookup_actor(const std::string& name, std::error_code& ec,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  constexpr bool any = std::is_same_v<Handle, caf::actor>;
  auto ptr = detail::lookup_actor_impl(name, actor_system().message_types<Handle>(), any, timeout, ec);
  if (ec || !ptr) return std::nullopt;
  return caf::actor_cast<Handle>(std::move(ptr));
}
template <class Handle = caf::actor>
std::optional<Handle> lookup_actor(const std::string& name, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::error_code ec;
  auto h = lookup_actor<Handle>(name, ec, timeout);
  throw_if(ec, "mproc::lookup_actor " + name);
  return h;
}

}  // namespace mproc
