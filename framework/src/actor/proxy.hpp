// Internal: a CAF proxy for an actor of another process of the node (router.hpp).
//
// Like CAF's forwarding_actor_proxy, but without the broker hop: enqueue serializes straight into
// the router's connection. Links are forwarded as (link_atom, linker) messages, which the
// receiving router turns into a link between the real actor and its proxy of the linker.
//
// Thread safety: enqueue and the link calls from any thread (CAF's contract for actors).
#pragma once

#include <caf/actor_proxy.hpp>
#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/system_messages.hpp>
#include <memory>

#include "router.hpp"

namespace mproc::detail {

class actor_proxy_impl final : public caf::actor_proxy {
 public:
  actor_proxy_impl(caf::actor_config& cfg, std::weak_ptr<actor_router> router)
      : caf::actor_proxy(cfg), router_(std::move(router)), pid_(pid_of(node())) {}

  void enqueue(caf::mailbox_element_ptr what, caf::execution_unit* ctx) override {
    auto msg = what->move_content_to_message();
    // As CAF's forwarding proxy: an exit message we forward ends our side of the link.
    if (msg.match_elements<caf::exit_msg>()) unlink_from(msg.get_as<caf::exit_msg>(0).source);
    send(std::move(what->sender), what->mid, what->stages, std::move(msg), ctx);
  }

  // CAF calls these with both actors' locks held; serializing x there would register x in CAF's
  // registry, which locks x again. So the link message leaves later, from the I/O thread.
  bool add_backlink(caf::abstract_actor* x) override {
    if (!caf::monitorable_actor::add_backlink(x)) return false;
    send_later(caf::link_atom::get_value(), x->ctrl());
    return true;
  }

  bool remove_backlink(caf::abstract_actor* x) override {
    if (!caf::monitorable_actor::remove_backlink(x)) return false;
    send_later(caf::unlink_atom::get_value(), x->ctrl());
    return true;
  }

  void kill_proxy(caf::execution_unit* ctx, caf::error reason) override { cleanup(std::move(reason), ctx); }

 private:
  void send_later(caf::atom_value what, caf::strong_actor_ptr linker) {
    if (auto r = router_.lock()) {
      r->post([r, self = caf::strong_actor_ptr{ctrl()}, pid = pid_, what, linker = std::move(linker)] {
        r->forward(pid, self->id(), self, caf::make_message_id(), {}, caf::make_message(what, linker));
      });
    }
  }
  void send(caf::strong_actor_ptr sender, caf::message_id mid, const caf::mailbox_element::forwarding_stack& stages,
            caf::message msg, caf::execution_unit* ctx) {
    if (auto r = router_.lock()) {
      r->forward(pid_, id(), std::move(sender), mid, stages, std::move(msg), ctx);
    } else if (mid.is_request() && sender) {
      sender->enqueue(nullptr, mid.response_id(), caf::make_message(make_caf_error(errc::node_closed, "actors of this process are shut down")), nullptr);
    }
  }

  std::weak_ptr<actor_router> router_;
  std::uint32_t pid_;
};

}  // namespace mproc::detail
