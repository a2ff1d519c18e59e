#include "relay.hpp"

#include <caf/all.hpp>

#include <map>
#include <memory>
#include <mutex>

#include "../actor/router.hpp"
#include "../actor/runtime.hpp"
#include "../node_impl.hpp"
#include "encoded.hpp"
#include "mproc/actor_error.hpp"
#include "mproc/actor_registry.hpp"
#include "mproc/actor_request.hpp"
#include "mproc/actor_runtime.hpp"
#include "queue_protocol.hpp"
#include "watched_request.hpp"

namespace mproc::cluster::detail {
namespace {

/// Routes by capability. A table rather than messages to the relay: the agent adds a route
/// before it starts the process that will use it, so the route is there when the first call is.
struct route_table {
  std::mutex mutex;
  std::map<std::string, caf::actor> routes;
  caf::actor relay;
  std::string socket_path;

  static route_table& get() {
    static route_table t;
    return t;
  }
  caf::actor find(const std::string& capability) {
    std::lock_guard lock{mutex};
    auto it = routes.find(capability);
    return it == routes.end() ? caf::actor{} : it->second;
  }
  void forget(const caf::actor_addr& gateway) {
    std::lock_guard lock{mutex};
    std::erase_if(routes, [&](const auto& r) { return r.second.address() == gateway; });
  }
};

struct relay_state {
  /// Presence actors of writers here, and the capability each stands for.
  std::map<caf::actor_addr, std::string> writers;
  static inline const char* name = "mproc.cluster.relay";
};

using relay_actor = caf::stateful_actor<relay_state>;

/// Forwards one call and answers `rp` with the gateway's answer, or node_lost once the
/// gateway's node is lost.
void forward(relay_actor* self, const std::string& capability, const std::string& call, caf::response_promise rp) {
  auto gateway = route_table::get().find(capability);
  if (!gateway) return void(rp.deliver(make_caf_error(errc::node_lost, "the host serving this queue is gone")));
  self->monitor(gateway);  // to forget the route when it goes (monitoring twice is harmless)
  watched_request(
      self, gateway, [rp](std::string& out) mutable { rp.deliver(std::move(out)); },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); }, queue_call_atom::value, capability, call);
}

// The int argument: CAF 0.17 dereferences a null argument tuple for function actors without one.
caf::behavior relay(relay_actor* self, int) {
  self->set_down_handler([self](const caf::down_msg& down) {
    auto& writers = self->state.writers;
    if (auto it = writers.find(down.source); it != writers.end()) {
      if (auto gateway = route_table::get().find(it->second))
        self->send(gateway, queue_call_atom::value, it->second, encode_to_string(make_call(queue_op::writer_gone)));
      writers.erase(it);
      return;
    }
    route_table::get().forget(down.source);
  });
  return {
      [self](relay_call_atom, const std::string& capability, const std::string& call) {
        auto rp = self->make_response_promise();
        forward(self, capability, call, rp);
        return rp;
      },
      [self](relay_writer_atom, const std::string& capability, const caf::actor& presence) {
        auto rp = self->make_response_promise();
        if (!presence) {
          rp.deliver(make_caf_error(errc::invalid_argument, "no presence actor"));
          return rp;
        }
        self->monitor(presence);
        self->state.writers.emplace(presence.address(), capability);
        forward(self, capability, encode_to_string(make_call(queue_op::writer_here)), rp);
        return rp;
      },
  };
}

}  // namespace

void start_relay(std::error_code& ec) {
  ec.clear();
  auto& table = route_table::get();
  {
    std::lock_guard lock{table.mutex};
    if (table.relay) return;
    table.relay = actor_system().spawn(relay, 0);
  }
  mproc::detail::at_node_shutdown([] {
    auto& t = route_table::get();
    std::lock_guard lock{t.mutex};
    caf::anon_send_exit(t.relay, caf::exit_reason::user_shutdown);
    t.relay = nullptr;
    t.routes.clear();
    t.socket_path.clear();
  });
  register_actor(relay_name, table.relay, ec);
  if (ec) return;
  // Other processes of the node connect here to reach the relay (see relay_socket_path).
  auto path = mproc::detail::actor_runtime::instance().router().listen(ec);
  std::lock_guard lock{table.mutex};
  table.socket_path = std::move(path);
}

std::string relay_socket_path() {
  auto& table = route_table::get();
  std::lock_guard lock{table.mutex};
  return table.socket_path;
}

void add_relay_route(const std::string& capability, const caf::actor& gateway) {
  auto& table = route_table::get();
  std::lock_guard lock{table.mutex};
  table.routes.emplace(capability, gateway);
}

}  // namespace mproc::cluster::detail
