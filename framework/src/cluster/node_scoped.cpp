#include "node_scoped.hpp"

#include <caf/all.hpp>

#include <map>
#include <mutex>

#include "../actor/runtime.hpp"
#include "../node_impl.hpp"
#include "mproc/actor_runtime.hpp"

namespace mproc::cluster::detail {
namespace {

struct node_scoped_table {
  std::mutex mutex;
  std::map<caf::actor_addr, caf::actor> live;
  bool hook_installed = false;

  static node_scoped_table& get() {
    static node_scoped_table t;
    return t;
  }
  void end_all() {
    std::map<caf::actor_addr, caf::actor> ending;
    {
      std::lock_guard lock{mutex};
      ending.swap(live);
      hook_installed = false;
    }
    for (auto& [addr, actor] : ending) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }
};

}  // namespace

void end_with_node(const caf::actor& actor) {
  auto& table = node_scoped_table::get();
  {
    std::lock_guard lock{table.mutex};
    if (!table.hook_installed) {
      table.hook_installed = true;
      mproc::detail::at_node_shutdown([] { node_scoped_table::get().end_all(); });
    }
    table.live.emplace(actor.address(), actor);
  }
  // Forget it when it ends by itself (a weak address: the table must not keep it alive then).
  actor->attach_functor([addr = actor.address()] {
    auto& t = node_scoped_table::get();
    std::lock_guard lock{t.mutex};
    t.live.erase(addr);
  });
}

caf::actor spawn_lifetime_marker() {
  // The int argument: CAF 0.17 dereferences a null argument tuple for function actors without one.
  auto marker = actor_system().spawn([](caf::event_based_actor*, int) -> caf::behavior { return {[](caf::unit_t) {}}; }, 0);
  end_with_node(marker);
  return marker;
}

void end_now(const caf::actor& actor) noexcept {
  if (actor && mproc::detail::actor_runtime::started() != nullptr)
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

}  // namespace mproc::cluster::detail
