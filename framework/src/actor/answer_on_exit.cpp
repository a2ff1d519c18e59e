#include <caf/attachable.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include "mproc/actor_error.hpp"
#include "mproc/actor_request.hpp"

namespace mproc::detail {
namespace {

/// Answers one waiting request with the exit reason of the actor it was sent to.
class answer_attachable final : public caf::attachable {
 public:
  static constexpr std::size_t token_type = caf::attachable::token::anonymous;

  answer_attachable(caf::strong_actor_ptr requester, caf::message_id response_id)
      : requester_(std::move(requester)), response_id_(response_id) {}

  void actor_exited(const caf::error& reason, caf::execution_unit* host) override {
    // As CAF answers a request that finds its receiver gone (actor_down), unless the reason is
    // that the receiver's process or node was lost: that is worth telling apart.
    auto code = to_error_code(reason);
    auto answer = code == errc::node_lost || code == errc::host_lost ? reason
                                                                     : caf::make_error(caf::sec::request_receiver_down);
    requester_->enqueue(nullptr, response_id_, caf::make_message(std::move(answer)), host);
  }

  bool matches(const token& what) override { return what.ptr == this; }

 private:
  caf::strong_actor_ptr requester_;
  caf::message_id response_id_;
};

}  // namespace

answer_on_exit::answer_on_exit(const caf::strong_actor_ptr& dest, caf::strong_actor_ptr requester, caf::message_id response_id) {
  if (!dest || !requester) return;
  auto attachable = std::make_unique<answer_attachable>(std::move(requester), response_id);
  token_ = attachable.get();
  dest_ = dest;
  dest_->get()->attach(std::move(attachable));
}

answer_on_exit::~answer_on_exit() {
  if (dest_) dest_->get()->detach(caf::attachable::token{caf::attachable::token::anonymous, token_});
}

}  // namespace mproc::detail
