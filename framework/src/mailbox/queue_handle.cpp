#include "mproc/detail/queue_core.hpp"

#include "runtime.hpp"

#include <unistd.h>

#include <atomic>

namespace mproc::detail {

queue_core& queue_handle::core() const {
  if (!core_) throw error(errc::invalid_argument, "empty mproc::queue handle");
  if (generation_ == fork_generation()) return *core_;
  std::error_code ec;
  // token(): immutable data of the inherited core, safe to read.
  queue_core* c = mailbox_runtime::instance().reopen(core_->token(), *type_, presence_ != nullptr, ec);
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
    new std::shared_ptr<void>(std::move(presence_));    // NOLINT: its release would talk for the parent
  }
}

std::shared_ptr<queue_core> queue_handle::shared_core() const {
  queue_core& c = core();
  if (&c == core_.get()) return core_;
  return {std::shared_ptr<queue_core>{}, &c};  // a reopened core: the runtime keeps it for good
}

queue_handle queue_handle::as_reader() const {
  queue_handle r;
  r.core_ = core_;
  r.type_ = type_;
  r.generation_ = generation_;
  return r;
}

namespace {
std::atomic<remote_queue_opener> installed_remote_opener{nullptr};
}  // namespace

void set_remote_queue_opener(remote_queue_opener opener) noexcept { installed_remote_opener.store(opener); }

std::shared_ptr<queue_core> open_remote_queue(const queue_token& token, const std::type_info& type,
                                              std::error_code& ec) {
  auto opener = installed_remote_opener.load();
  if (opener == nullptr) return ec = make_error_code(errc::invalid_argument), nullptr;
  return opener(token, type, ec);
}

std::uint64_t new_ticket_id() noexcept {
  static std::atomic<std::uint32_t> counter{0};
  return (static_cast<std::uint64_t>(::getpid()) << 32) | (counter.fetch_add(1) + 1);
}

}  // namespace mproc::detail
