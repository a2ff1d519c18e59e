#include "remote_spawn.hpp"

#include <signal.h>

#include <caf/all.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "../internal_wait.hpp"
#include "../node_impl.hpp"
#include "encoded.hpp"
#include "mproc/actor_error.hpp"
#include "mproc/actor_runtime.hpp"
#include "mproc/node.hpp"
#include "mproc/process.hpp"

namespace mproc::cluster::detail {
namespace {

using exited_atom = caf::atom_constant<caf::atom("mp_exited")>;

struct process_actor_state {
  std::shared_ptr<process> proc;
  std::optional<int> exitcode;
  std::vector<caf::response_promise> joiners;
  static inline const char* name = "mproc.cluster.remote_process";
};

/// The joiner threads and their actors, stopped at the node's end.
struct served_processes {
  std::mutex mutex;
  std::vector<std::thread> joiners;
  std::vector<std::weak_ptr<process>> processes;
  std::vector<caf::actor> actors;
  bool hook_installed = false;

  static served_processes& get() {
    static served_processes s;
    return s;
  }

  void stop_all() {
    std::vector<std::thread> threads;
    std::vector<caf::actor> ending;
    {
      std::lock_guard lock{mutex};
      for (auto& weak : processes)
        if (auto p = weak.lock()) {
          std::error_code ignored;
          p->kill(ignored);
        }
      threads.swap(joiners);
      ending.swap(actors);
      processes.clear();
      hook_installed = false;
    }
    for (auto& t : threads) t.join();
    for (auto& a : ending) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

caf::behavior process_actor(caf::stateful_actor<process_actor_state>* self, std::shared_ptr<process> proc,
                            caf::actor keeper) {
  self->state.proc = std::move(proc);
  self->monitor(keeper);
  self->set_down_handler([self](const caf::down_msg&) {
    // The node that started the process ended or was lost: nobody can join it any more.
    if (!self->state.exitcode) {
      std::error_code ignored;
      self->state.proc->terminate(ignored);
    }
  });
  return {
      [self](join_atom) -> caf::result<int> {
        if (self->state.exitcode) return *self->state.exitcode;
        auto rp = self->make_response_promise<int>();
        self->state.joiners.push_back(rp);
        return rp;
      },
      [self](status_atom) -> std::tuple<bool, int> {
        return {self->state.exitcode.has_value(), self->state.exitcode.value_or(0)};
      },
      [self](signal_atom, int sig) -> caf::result<void> {
        if (self->state.exitcode) return caf::unit;
        std::error_code ec;
        if (sig == SIGKILL) self->state.proc->kill(ec);
        else self->state.proc->terminate(ec);
        if (ec) return make_caf_error(errc::invalid_argument, ec.message());
        return caf::unit;
      },
      [self](exited_atom, int code) {
        self->state.exitcode = code;
        for (auto& rp : self->state.joiners) rp.deliver(code);
        self->state.joiners.clear();
      },
  };
}

}  // namespace

caf::expected<std::tuple<caf::actor, int, std::vector<caf::actor>>> start_remote_process(
    const std::string& entry, const std::string& args, const caf::actor& keeper, const crossing_handles& handles) {
  const auto* info = mproc::detail::find_entry_by_name(mproc::detail::entry_kind::function, entry);
  if (info == nullptr) return make_caf_error(errc::unknown_entry, entry);
  auto* n = node::current_or_null();
  if (n == nullptr) return make_caf_error(errc::no_node, "remote spawn of " + entry);
  mproc::detail::transfer_bundle passed;
  std::vector<caf::actor> bridges;
  std::error_code ec;
  accept_handles(handles, passed, bridges, ec);
  if (ec) return make_caf_error(errc::spawn_failed, "remote spawn of " + entry + ": " + ec.message());
  auto proc = std::make_shared<process>(*n);
  mproc::detail::process_access::set_encoded_target(*proc, *info, as_bytes(args), std::move(passed));
  proc->start(ec);
  if (ec) {
    abandon_bridges(bridges);
    return make_caf_error(errc::spawn_failed, "remote spawn of " + entry + ": " + ec.message());
  }
  auto actor = actor_system().spawn(process_actor, proc, keeper);
  auto& served = served_processes::get();
  std::lock_guard lock{served.mutex};
  if (!served.hook_installed) {
    served.hook_installed = true;
    mproc::detail::at_node_shutdown([] { served_processes::get().stop_all(); });
  }
  served.processes.push_back(proc);
  served.actors.push_back(actor);
  served.joiners.emplace_back([proc, actor] {
    // Our own wait, not the program's: it must not take the node's SIGINT (internal_wait.hpp).
    mproc::detail::internal_wait_scope internal;
    std::error_code ignored;
    proc->join(ignored);
    caf::anon_send(actor, exited_atom::value, proc->exitcode().value_or(-SIGKILL));
  });
  return std::make_tuple(actor, static_cast<int>(proc->pid()), std::move(bridges));
}

}  // namespace mproc::cluster::detail
