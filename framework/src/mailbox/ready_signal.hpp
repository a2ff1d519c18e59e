// Internal: an eventfd that is readable exactly while a mailbox has something to take, kept up
// to date only while somebody watches it (mproc::wait, async gets). Unwatched, it costs one
// branch per state change.
//
// Thread safety: none; the owner calls every member under its own lock.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <system_error>

#include "../fd.hpp"

namespace mproc::detail {

class ready_signal {
 public:
  /// Starts watching; returns the fd to poll (valid until the last unwatch), or -1 on error.
  int watch(bool ready_now, std::error_code& ec) {
    if (!fd_) {
      fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      if (!fd_) return ec = last_error(), -1;
    }
    ++watchers_;
    update(ready_now);
    ec.clear();
    return fd_.get();
  }
  void unwatch() noexcept {
    if (watchers_ > 0) --watchers_;
  }
  /// Call after every change of the state: readable iff `ready`.
  void update(bool ready) noexcept {
    if (watchers_ == 0 || ready == signaled_) return;
    std::uint64_t v = 1;
    if (ready) {
      if (::write(fd_.get(), &v, sizeof v) == sizeof v) signaled_ = true;
    } else {
      if (::read(fd_.get(), &v, sizeof v) == sizeof v || errno == EAGAIN) signaled_ = false;
    }
  }

 private:
  unique_fd fd_;
  int watchers_ = 0;
  bool signaled_ = false;
};

}  // namespace mproc::detail
