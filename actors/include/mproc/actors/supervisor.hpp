// mproc/actors/supervisor.hpp — an Erlang/OTP-style supervisor as a CAF actor.
//
//   mproc::actors::supervisor_spec spec;
//   spec.strategy = mproc::actors::restart_strategy::rest_for_one;
//   spec.intensity = {3, std::chrono::seconds(5)};         // at most 3 restarts in any 5 s
//   spec.children.push_back({"db", [](caf::actor_system& sys) -> caf::expected<caf::actor> {
//     return sys.spawn(db_actor, config);
//   }});
//   caf::actor sup = mproc::actors::spawn_supervisor(sys, spec);
//   ...
//   caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);  // stops the children, last first
//
// Children are started in the order given, each by its start function, monitored, and published
// under their name (mproc/actors/directory.hpp) after every start, so `lookup(sys, "db")`
// always finds the current incarnation. A start function may spawn the actor in this process or
// in another one: the supervisor only sees the handle. A start function that fails (an error, a
// null handle, an exception) counts as a crash of that child.
//
// When a child ends (its down_msg arrives):
//  - restart types: `permanent` is always restarted; `transient` only after a non-normal exit
//    (normal and user_shutdown are normal, as Erlang's normal and shutdown); `temporary` never.
//  - strategies: `one_for_one` restarts the child alone; `one_for_all` stops every other running
//    child (last first) and starts all children again in order; `rest_for_one` does that for
//    the children after the crashed one. A group restart starts every child except temporary
//    ones that ran before (those are never started twice).
//  - intensity: each restart (a group restart counts once) is recorded; one more than
//    `max_restarts` within `within` and the supervisor gives up: it stops all children (last
//    first) and quits with the caf::error (category "mproc", errc::too_many_restarts) whose
//    context names the child whose crash exceeded it (mproc/actors/caf_error.hpp).
//
// Stopping a child: exit(user_shutdown), up to its `shutdown` bound for its down_msg, then
// exit(kill); children are stopped one after the other, last first.
//
// The supervisor ends:
//  - by an exit message with a non-normal reason (e.g. anon_send_exit(sup, user_shutdown)): it
//    stops its children first, then quits with that reason, so whoever waits for its down_msg
//    knows the children are gone (a parent supervisor does just that, so supervisors nest);
//  - by exit(kill) (which no actor can intercept): its children are stopped all the same, by a
//    helper actor started as the supervisor dies, but after its down_msg went out;
//  - when its last handle goes (CAF ends an actor nobody can reach): as for exit(kill). Keep the
//    handle for as long as the children should run.
// An actor_system waits for every actor when destroyed: stop a supervisor before that. The node's
// actor system (mproc::actor_system()) waits for none, but CAF still waits for a detached actor
// such as the supervisor until its object is destroyed: drop its handles before the node ends
// (it then ends as for exit(kill)). Its own helpers never keep it: a stop under way when the node
// ends (its stopper stranded by the end of CAF's scheduler) holds it only weakly.
//
// Requests it answers:
//  - (whereis_atom, std::string name) -> caf::actor: the child's current handle; a null handle
//    while it is not running (between a crash and its restart, a temporary child that ended);
//    an "mproc" error with errc::invalid_argument for a name it does not supervise.
//  - (children_atom) -> std::vector<child_info>: every child in spec order, with its handle and
//    restart count (starts after its first, whether or not they succeeded).
// The observer, if set, receives (restarted_atom, std::string name, std::uint64_t restarts)
// after each successful restart, when the new handle is already published.
//
// The supervisor runs detached (a thread of its own): start functions may block (a spawn in
// another process) without stalling CAF's scheduler.
//
// Thread safety: spawn_supervisor may be called from any thread; the returned handle is a
// caf::actor (any thread). Start functions run on the supervisor's thread, one at a time.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mproc/entry.hpp>  // MPROC_DETAIL_CAT
#include <string>
#include <system_error>
#include <vector>

namespace mproc::actors {

using whereis_atom = caf::atom_constant<caf::atom("whereis")>;
using children_atom = caf::atom_constant<caf::atom("children")>;
using restarted_atom = caf::atom_constant<caf::atom("restarted")>;

enum class restart_type {
  permanent,  ///< always restarted
  transient,  ///< restarted only after a non-normal exit (not normal, not user_shutdown)
  temporary,  ///< never restarted
};

enum class restart_strategy {
  one_for_one,   ///< restart the crashed child only
  one_for_all,   ///< stop the others, restart every child
  rest_for_one,  ///< stop the children after the crashed one, restart it and them
};

/// Starts one incarnation of a child; may spawn it in this process or elsewhere.
using start_function = std::function<caf::expected<caf::actor>(caf::actor_system&)>;

struct child_spec {
  std::string name;  ///< unique within the supervisor; published in the directory
  start_function start;
  restart_type restart = restart_type::permanent;
  /// How long a stop waits for the child to end after exit(user_shutdown) before exit(kill).
  std::chrono::milliseconds shutdown = std::chrono::seconds(5);
};

struct restart_intensity {
  int max_restarts = 3;                                    ///< restarts allowed within `within`
  std::chrono::milliseconds within = std::chrono::seconds(5);
};

struct supervisor_spec {
  restart_strategy strategy = restart_strategy::one_for_one;
  restart_intensity intensity;
  std::vector<child_spec> children;  ///< started in this order, stopped in reverse
  caf::actor observer;               ///< optional: gets (restarted_atom, name, restarts)
};

/// One line of the (children_atom) reply.
struct child_info {
  std::string name;
  caf::actor handle;  ///< null while not running
  std::uint64_t restarts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("mproc.child_info"), x.name, x.handle, x.restarts);
}

/// Spawns the supervisor and returns once it tried the first start of every child (as OTP's
/// start_link), so their names are published; a first start that failed is then handled as a
/// crash. A spec that cannot work (an empty or duplicate child name, a child without start
/// function, a negative max_restarts, a non-positive `within` or `shutdown`) throws mproc::error
/// (errc::invalid_argument) saying what is wrong. Blocks the calling thread meanwhile (it may be
/// another supervisor's start function: supervisors nest).
[[nodiscard]] caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec);
/// As above; on a bad spec sets `ec` and returns a null handle.
[[nodiscard]] caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec, std::error_code& ec);

/// Builds the spec of a supervisor spawned by name (MPROC_SUPERVISOR); it may look up
/// published actors (an observer, say) in `sys`.
using spec_builder = supervisor_spec (*)(caf::actor_system& sys);

/// The CAF actor type of supervisors spawned by name, the way another process starts one (its
/// arguments must be serializable: a std::function is not):
///   sys.spawn<caf::actor>(mproc::actors::supervisor_type, caf::make_message(std::string{"my_tree"}))
/// builds the spec with the builder registered as "my_tree" and returns at once: the supervisor
/// starts its children as its first act, so any request to it (whereis) is answered after that.
/// An unknown name, a name registered twice with different builders, or a spec that
/// spawn_supervisor refuses, fails the spawn (caf::sec::cannot_spawn_actor_from_arguments).
inline constexpr const char* supervisor_type = "mproc.supervisor";

/// Registers `build` under `name`; MPROC_SUPERVISOR does it before main. Returns true.
bool register_supervisor_spec(const char* name, spec_builder build);

/// Registers the message types above, the "mproc" error category and the supervisor_type actor
/// type in `cfg`; every process whose actors talk to a supervisor, or that hosts one, needs it.
void add_supervisor_types(caf::actor_system_config& cfg);

}  // namespace mproc::actors

/// Makes a spec builder (`mproc::actors::supervisor_spec fn(caf::actor_system&)`) spawnable by
/// its spelled name in every process of the program; one line at namespace scope.
#define MPROC_SUPERVISOR(fn)                                  \
  [[maybe_unused]] static const bool MPROC_DETAIL_CAT(mproc_supervisor_registered_, __COUNTER__) = \
      ::mproc::actors::register_supervisor_spec(#fn, &fn)
