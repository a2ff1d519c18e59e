// mproc/actor_request.hpp — blocking requests and down callbacks for code that is not an actor.
//
//   int sum = mproc::request<int>(calc, 1s, add_atom_v, 1, 2);          // throws mproc::error
//   std::error_code ec;
//   auto r = mproc::request<int>(ec, calc, 1s, add_atom_v, 1, 2);       // std::optional<int>
//   mproc::on_down(calc, [](const caf::error& reason) { ... });          // once, when calc ends
//
// Inside actors use CAF's own self->request(...).then(...): remote handles are ordinary handles.
//
// Errors: errc::timeout (no answer in time), errc::actor_down (the actor ended first),
// errc::host_lost (its process died: the message names the exit code or signal), errc::wrong_type
// (a message type not registered with MPROC_ACTOR_MESSAGE), or the error the actor answered with.
//
// Thread safety: any thread; each call uses a scoped actor of its own.
#pragma once

#include <caf/actor_registry.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/system_messages.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <system_error>
#include <tuple>
#include <utility>

#include "mproc/actor_error.hpp"
#include "mproc/actor_runtime.hpp"

namespace mproc {
namespace detail {
/// While it lives: should `dest` end before it answered, `requester` gets an answer at once:
/// node_lost or host_lost when that is why `dest` ended, actor_down otherwise. CAF itself answers
/// requests still queued at an actor that ends, but not one in flight to a node whose connection
/// broke: that would wait for its timeout.
/// Destructor: stops watching.
class answer_on_exit {
 public:
  answer_on_exit(const caf::strong_actor_ptr& dest, caf::strong_actor_ptr requester, caf::message_id response_id);
  ~answer_on_exit();
  answer_on_exit(const answer_on_exit&) = delete;
  answer_on_exit& operator=(const answer_on_exit&) = delete;

 private:
  caf::strong_actor_ptr dest_;
  const void* token_ = nullptr;
};

template <class... Rs>
using request_result = std::conditional_t<sizeof...(Rs) == 0, std::tuple<>,
                                          std::conditional_t<sizeof...(Rs) == 1, std::tuple_element_t<0, std::tuple<Rs..., void>>,
                                                             std::tuple<Rs...>>>;

template <class... Rs, class Handle, class... Ts>
std::optional<request_result<Rs...>> request_impl(caf::error& err, const Handle& dest,
                                                  std::chrono::steady_clock::duration timeout, Ts&&... xs) {
  std::optional<request_result<Rs...>> out;
  if (!dest) {
    err = make_caf_error(errc::invalid_argument, "request to a null handle");
    return out;
  }
  caf::scoped_actor self{actor_system()};
  auto handle = self->request(dest, std::chrono::duration_cast<caf::timespan>(timeout), std::forward<Ts>(xs)...);
  answer_on_exit early_answer{caf::actor_cast<caf::strong_actor_ptr>(dest), caf::actor_cast<caf::strong_actor_ptr>(self),
                              handle.id()};
  handle.receive([&](Rs&... rs) { out.emplace(std::move(rs)...); }, [&](caf::error& e) { err = std::move(e); });
  return out;
}
}  // namespace detail

/// Sends xs... to `dest` as a request and waits at most `timeout` for the answer: one value for
/// one result type, a tuple for several, an empty tuple when the answer is empty. Throws mproc::error.
template <class... Rs, class Handle, class... Ts>
detail::request_result<Rs...> request(const Handle& dest, std::chrono::steady_clock::duration timeout, Ts&&... xs) {
  caf::error err;
  auto out = detail::request_impl<Rs...>(err, dest, timeout, std::forward<Ts>(xs)...);
  if (err) throw to_error(err, "mproc::request");
  return std::move(*out);
}

/// Non-throwing form: nullopt and `ec` set on failure.
template <class... Rs, class Handle, class... Ts>
std::optional<detail::request_result<Rs...>> request(std::error_code& ec, const Handle& dest,
                                                     std::chrono::steady_clock::duration timeout, Ts&&... xs) {
  caf::error err;
  auto out = detail::request_impl<Rs...>(err, dest, timeout, std::forward<Ts>(xs)...);
  ec = to_error_code(err);
  if (ec) out.reset();
  return out;
}

/// Calls `callback(reason)` once when `watched` ends, on a CAF scheduler thread. For an actor
/// of another process the reason of a dead host is errc::host_lost. A null handle is reported at
/// once with errc::actor_down.
template <class Handle>
void on_down(const Handle& watched, std::function<void(const caf::error&)> callback) {
  // The int argument: CAF 0.17 dereferences a null argument tuple for function actors without one.
  auto watcher = actor_system().spawn(
      [watched, callback = std::move(callback)](caf::event_based_actor* self, int) -> caf::behavior {
        if (!watched) {
          callback(make_caf_error(errc::actor_down, "null handle"));
          self->quit();
          return {};
        }
        self->monitor(watched);
        self->set_down_handler([self, callback](caf::down_msg& dm) {
          callback(dm.reason);
          self->quit();
        });
        return {[](caf::unit_t) {}};
      },
      0);
  // Nobody else holds the watcher: the registry keeps it alive until it ends.
  actor_system().registry().put(watcher.id(), watcher);
}

}  // namespace mproc
