// Internal: a request from an event-based actor that is answered even when its receiver's node
// is lost. CAF 0.17 answers a request that finds its receiver gone, but one already sent to a
// node whose connection breaks waits for ever (or its timeout); detail::answer_on_exit answers
// it with the receiver's exit reason (node_lost) the moment the proxy dies.
//
// Thread safety: call from `self`'s own handlers, as any request.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/error.hpp>

#include <chrono>
#include <memory>
#include <utility>

#include "mproc/actor_request.hpp"

namespace mproc::cluster::detail {

/// "No deadline" for a blocking request to another node (mproc::request takes a duration): a
/// lost node still answers at once (node_lost), so nothing else is needed.
inline constexpr auto no_request_deadline = std::chrono::hours{24 * 365};

/// self->request(dest, infinite, xs...).then(on_value, on_error), with on_error also called
/// when `dest` ends before it answers.
template <class Self, class OnValue, class OnError, class... Ts>
void watched_request(Self* self, const caf::actor& dest, OnValue on_value, OnError on_error, Ts&&... xs) {
  auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
  auto early = std::make_shared<mproc::detail::answer_on_exit>(caf::actor_cast<caf::strong_actor_ptr>(dest),
                                                               caf::actor_cast<caf::strong_actor_ptr>(self), handle.id());
  // Both handlers live until the answer comes, so one of them holding `early` is enough.
  handle.then(std::move(on_value), [on_error = std::move(on_error), early](caf::error& err) mutable { on_error(err); });
}

}  // namespace mproc::cluster::detail
