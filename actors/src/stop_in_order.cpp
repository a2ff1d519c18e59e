// The stopper actor (stop_in_order.hpp).
#include "stop_in_order.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <utility>

namespace mproc::actors::detail {
namespace {

using stop_atom = caf::atom_constant<caf::atom("stopkids")>;  // begin (sent once, anonymously)
using deadline_atom = caf::atom_constant<caf::atom("stopdue")>;

struct stopper_state {
  std::vector<stop_item> items;
  std::size_t next = 0;
  caf::actor current;
  std::uint64_t round = 0;  // tells the deadline of the current item from stale ones
  caf::actor_addr notify;
};
using stopper_actor = caf::stateful_actor<stopper_state>;

void stop_next(stopper_actor* self) {
  auto& st = self->state;
  ++st.round;
  if (st.next == st.items.size()) {
    st.current = nullptr;
    if (auto to = caf::actor_cast<caf::actor>(st.notify)) self->send(to, stopped_atom::value);
    self->quit();
    return;
  }
  const auto& item = st.items[st.next++];
  st.current = item.who;
  self->monitor(st.current);  // an actor already gone yields its down_msg at once
  self->send_exit(st.current, caf::exit_reason::user_shutdown);
  self->delayed_send(self, item.bound, deadline_atom::value, st.round);
}

caf::behavior stopper(stopper_actor* self, std::vector<stop_item> items, caf::actor_addr notify) {
  self->state.items = std::move(items);
  self->state.notify = std::move(notify);
  self->set_down_handler([self](caf::down_msg& down) {
    if (self->state.current && down.source == self->state.current.address()) stop_next(self);
  });
  return {
      [self](stop_atom) {
        stop_next(self);
      },
      [self](deadline_atom, std::uint64_t round) {
        if (round != self->state.round) return;
        self->send_exit(self->state.current, caf::exit_reason::kill);
        stop_next(self);
      },
  };
}

}  // namespace

void stop_in_order(caf::actor_system& sys, std::vector<stop_item> items, caf::actor_addr notify) {
  caf::anon_send(sys.spawn(stopper, std::move(items), std::move(notify)), stop_atom::value);
}

}  // namespace mproc::actors::detail
