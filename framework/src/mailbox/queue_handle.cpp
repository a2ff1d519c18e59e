#include "mproc/detail/queue_core.hpp"

#include "runtime.hpp"

namespace mproc::detail {

queue_core& queue_handle::core() const {
  if (!core_) throw error(errc::invalid_argument, "empty mproc::queue handle");
  if (generation_ == fork_generation()) return *core_;
  std::error_code ec;
  queue_core* c = mailbox_runtime::instance().reopen(core_->token(), *type_, ec);  // token(): immutable data
  throw_if(ec, "mproc::queue (handle copied by fork)");
  return *c;
}

const queue_token& queue_handle::token() const {
  if (!core_) throw error(errc::invalid_argument, "empty mproc::queue handle");
  return core_->token();
}

void queue_handle::release_if_stale() noexcept {
  if (core_ && generation_ != fork_generation()) {
    new std::shared_ptr<queue_core>(std::move(core_));  // NOLINT: leaked on purpose (see queue_handle)
  }
}

}  // namespace mproc::detail
