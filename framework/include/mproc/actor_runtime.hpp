// mproc/actor_runtime.hpp — the CAF actor system of each process, and the one-line registrations
// that make actor types and message types known identically in every process of a node.
//
//   caf::behavior calc_impl(caf::event_based_actor* self, int offset) { ... }
//   MPROC_ACTOR(calc_impl);            // spawnable by name in any process (actor_host::spawn)
//   MPROC_ACTOR_MESSAGE(order);        // a user type that travels between processes
//   MPROC_ACTOR_CONFIG(add_my_types);  // void add_my_types(caf::actor_system_config&), for groups
//
//   caf::actor_system& sys = mproc::actor_system();   // this process's system, started on first use
//
// Every process of a node that touches actors has one caf::actor_system, configured for latency:
// the work-stealing scheduler never falls into its 50 µs sleeping poll (moderate-poll-attempts = 0:
// after 100 busy polls a worker blocks on a condition variable, so an idle process costs no CPU and
// a wake-up costs a futex, ~6 µs instead of ~90 µs per hop here); max-threads is the number of
// CPUs (at least 2). No caf-application.ini is read: a file in the working directory must not
// change what a worker process does. MPROC_ACTOR_THREADS=n overrides the thread count.
//
// Registrations run during static initialization, so the same binary registers the same names in
// every image. Processes that connect compare their registrations; a difference is refused with
// errc::wrong_type naming what differs (a node never exchanges CAF's silent empty messages).
//
// Thread safety: actor_system() may be called from any thread. Registrations belong at namespace
// scope (static initialization); one made after the system started is reported by errc::invalid_argument
// from the next spawn_host.
//
// Lifetime: the system lives until the node of the process is destroyed. Then it stops without
// waiting for actors that still run (remote peers may hold references to any of them for ever),
// so finish your actors before the node ends if their destructors matter. Detached actors
// (caf::detached, a thread of their own) are the exception: CAF waits for each one's thread,
// which ends only once the actor's object is destroyed, so a detached actor that something still
// references when the node ends keeps the node's destructor from returning.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <string>

namespace mproc {

/// This process's actor system; starts it (and its router) on first use. Throws errc::no_node
/// when no mproc::node exists in the process.
caf::actor_system& actor_system();

/// True when `sys` is the actor system of this process's node (not one made by hand).
bool is_node_actor_system(const caf::actor_system& sys) noexcept;

namespace detail {
using actor_config_hook = void (*)(caf::actor_system_config&);
/// Adds a registration applied to every process's actor_system_config.
void add_actor_config_hook(actor_config_hook hook) noexcept;
/// Remembers the name MPROC_ACTOR gave a function, for spawn(fn, ...).
void register_actor_function(const void* fn, const char* name) noexcept;
/// The name of an MPROC_ACTOR function, nullptr when it was not registered.
const char* actor_function_name(const void* fn) noexcept;

struct actor_registrar {
  explicit actor_registrar(actor_config_hook hook) noexcept { add_actor_config_hook(hook); }
  actor_registrar(actor_config_hook hook, const void* fn, const char* name) noexcept {
    add_actor_config_hook(hook);
    register_actor_function(fn, name);
  }
};
}  // namespace detail
}  // namespace mproc

#define MPROC_DETAIL_ACTOR_CAT2(a, b) a##b
#define MPROC_DETAIL_ACTOR_CAT(a, b) MPROC_DETAIL_ACTOR_CAT2(a, b)

/// Makes a function-based actor spawnable by its spelled name in every process.
#define MPROC_ACTOR(fn)                                                                              \
  [[maybe_unused]] static const ::mproc::detail::actor_registrar MPROC_DETAIL_ACTOR_CAT(             \
      mproc_actor_registrar_, __COUNTER__) {                                                         \
    +[](::caf::actor_system_config& cfg) { cfg.add_actor_type(#fn, &fn); },                          \
        reinterpret_cast<const void*>(&fn), #fn                                                      \
  }

/// Registers a message type under its spelled name in every process (it needs inspect()).
#define MPROC_ACTOR_MESSAGE(T)                                                                       \
  [[maybe_unused]] static const ::mproc::detail::actor_registrar MPROC_DETAIL_ACTOR_CAT(             \
      mproc_actor_registrar_, __COUNTER__) {                                                         \
    +[](::caf::actor_system_config& cfg) { cfg.add_message_type<T>(#T); }                            \
  }

/// Runs fn(caf::actor_system_config&) on every process's configuration (groups of registrations).
#define MPROC_ACTOR_CONFIG(fn)                                                                       \
  [[maybe_unused]] static const ::mproc::detail::actor_registrar MPROC_DETAIL_ACTOR_CAT(             \
      mproc_actor_registrar_, __COUNTER__) {                                                         \
    &fn                                                                                              \
  }
