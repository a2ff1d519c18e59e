// mproc/actor_host.hpp — processes that host actors, and spawning actors in them.
//
//   mproc::node node{argc, argv};
//   mproc::actor_host host = mproc::spawn_host(node);                // an OS process hosting actors
//   auto calc = host.spawn<calc_actor>(calc_impl, 10);               // MPROC_ACTOR(calc_impl)
//   auto echo = host.spawn("echo_impl");                             // by name, caf::actor
//   auto lone = mproc::spawn_in_process<calc_actor>(node, calc_impl, 10);  // a process of its own
//
// The handles are ordinary CAF handles (proxies): send, request(...) with a timeout, monitor and
// link work as for a local actor, from any process of the node. Messages from one sender to one
// actor keep their order. When the hosting process dies (SIGKILL included) the node learns it from
// its pidfd and every watcher gets its down_msg / exit_msg with reason errc::host_lost naming the
// exit code or signal, within milliseconds (tested under 100 ms).
//
// Routing: every host keeps one Unix-domain connection to the process that spawned it (mode 0600
// socket in the node's 0700 directory, peers checked with SO_PEERCRED). Messages between two hosts
// are relayed by that parent, which forwards frames without decoding them.
//
// Thread safety: an actor_host may be used from any thread; spawn calls may run concurrently.
// Destructor: stops the host process if this handle still owns it (stop(): the host's actors are
// abandoned, the process exits and is joined; watchers of its actors get host_lost).
#pragma once

#include <sys/types.h>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/make_message.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "mproc/actor_error.hpp"
#include "mproc/actor_runtime.hpp"
#include "mproc/start_method.hpp"

namespace mproc {

class node;

struct host_options {
  /// How long spawn_host waits for the new process to connect.
  std::chrono::milliseconds start_timeout{10000};
  /// How long a spawn in the host may take.
  std::chrono::milliseconds spawn_timeout{10000};
  /// Start method of the host process; unset: the node's. `fork` is never used: the parent runs
  /// CAF's scheduler threads, so a host starts with forkserver instead.
  std::optional<start_method> method;
  /// The process ends when the first actor spawned in it ends (spawn_in_process).
  bool dedicated = false;
};

namespace detail {
struct host_state;
}

class actor_host {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// An empty handle (no process).
  actor_host() noexcept;
  actor_host(actor_host&&) noexcept;
  actor_host& operator=(actor_host&&) noexcept;
  actor_host(const actor_host&) = delete;
  actor_host& operator=(const actor_host&) = delete;
  ~actor_host();

  /// Spawns the actor type registered under `name` (MPROC_ACTOR, or add_actor_type in an
  /// MPROC_ACTOR_CONFIG) with `args`. For a typed Handle the host checks that the actor's
  /// interface is exactly Handle's. Throws mproc::error: invalid_argument (unknown name, bad
  /// arguments, interface mismatch), host_lost, timeout, wrong_type (an argument type that is not
  /// registered). Give function-based actors at least one argument: CAF 0.17 dereferences a null
  /// argument tuple otherwise.
  template <class Handle = caf::actor, class... Ts>
  Handle spawn(const std::string& name, Ts&&... args) {
    return spawn_from_message<Handle>(name, caf::make_message(std::forward<Ts>(args)...));
  }
  /// The same for a function registered with MPROC_ACTOR.
  template <class Handle = caf::actor, class Fn, class... Ts>
    requires std::is_function_v<std::remove_pointer_t<Fn>>
  Handle spawn(Fn fn, Ts&&... args) {
    return spawn<Handle>(registered_name(reinterpret_cast<const void*>(fn)), std::forward<Ts>(args)...);
  }
  /// The same with the arguments already packed in a message (a recipe kept for restarts).
  template <class Handle = caf::actor>
  Handle spawn_from_message(const std::string& name, caf::message args) {
    caf::error err;
    auto ptr = spawn_impl(name, std::move(args), actor_system().message_types<Handle>(), err);
    if (err) throw to_error(err, "mproc::actor_host::spawn " + name);
    return caf::actor_cast<Handle>(std::move(ptr));
  }
  /// Non-throwing form: a null handle and `ec` set on failure.
  template <class Handle = caf::actor, class... Ts>
  Handle spawn(std::error_code& ec, const std::string& name, Ts&&... args) {
    caf::error err;
    auto ptr = spawn_impl(name, caf::make_message(std::forward<Ts>(args)...), actor_system().message_types<Handle>(), err);
    ec = to_error_code(err);
    return ec ? Handle{} : caf::actor_cast<Handle>(std::move(ptr));
  }

  /// The host's process id (0 for an empty handle).
  pid_t pid() const noexcept;
  /// True while the host process runs.
  bool is_alive() const;
  /// Ends the host process: SIGTERM, SIGKILL after `grace`, then joins it. No-op when empty.
  /// Not interrupted by Ctrl-C (a wait of mproc's own: the node ends its children and, with no
  /// call of the program blocked, dies of SIGINT).
  void stop(duration grace = std::chrono::seconds(1));
  /// Gives the process up: it keeps running until its parent ends (or, dedicated, its actor does).
  void release() noexcept;

  struct access;

 private:
  friend struct access;
  explicit actor_host(std::shared_ptr<detail::host_state> state) noexcept;
  caf::strong_actor_ptr spawn_impl(const std::string& name, caf::message args, std::set<std::string> ifs,
                                   caf::error& err);
  static std::string registered_name(const void* fn);
  std::shared_ptr<detail::host_state> state_;
};

/// Starts a process that hosts actors and waits until it is connected. Throws mproc::error
/// (spawn_failed, timeout, wrong_type when its registrations differ, node_closed).
actor_host spawn_host(node& n, host_options options = {});
actor_host spawn_host(node& n, host_options options, std::error_code& ec);

/// Spawns an actor in a new process of its own, which ends when the actor ends (exit code 0
/// after a normal exit, 1 otherwise). Returns only the handle: watch the actor to learn its end.
template <class Handle = caf::actor, class Fn, class... Ts>
Handle spawn_in_process(node& n, Fn&& fn, Ts&&... args) {
  host_options options;
  options.dedicated = true;
  auto host = spawn_host(n, options);
  auto handle = host.spawn<Handle>(std::forward<Fn>(fn), std::forward<Ts>(args)...);
  host.release();
  return handle;
}

}  // namespace mproc
