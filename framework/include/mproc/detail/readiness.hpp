// mproc/detail/readiness.hpp — how a queue or a pipe end becomes a file descriptor that is
// readable while taking a message would not block; shared by mproc::wait and the Asio face.
//
// Thread safety: as the handles they hold (copies, so the caller's objects may go away).
#pragma once

#include <system_error>

#include "mproc/pipe.hpp"
#include "mproc/queue.hpp"

namespace mproc::detail {

/// A process-wide descriptor that is always readable (an eventfd), not owned by the caller.
int always_ready_fd(std::error_code& ec);

template <class T, bool CanPut>
struct queue_readiness {
  basic_queue<T, CanPut> q;
  int watch(std::error_code& ec) {
    auto* c = queue_access::core(q, ec);
    return c != nullptr ? c->watch(ec) : -1;
  }
  void unwatch() {
    std::error_code ec;
    if (auto* c = queue_access::core(q, ec)) c->unwatch();
  }
};

template <class T, bool CanWrite>
struct pipe_readiness {
  basic_pipe_end<T, true, CanWrite> end;
  int watch(std::error_code& ec) {
    // A message already buffered in this process, or a closed end (recv fails at once), counts
    // as ready: report a descriptor that is.
    if (end.poll() || end.native_handle() < 0) return always_ready_fd(ec);
    ec.clear();
    return end.native_handle();
  }
  void unwatch() {}
};

}  // namespace mproc::detail
