// mproc/wait.hpp — wait for the first of several queues, pipe ends and processes
// (multiprocessing.connection.wait).
//
//   auto ready = mproc::wait({results, control_pipe, worker}, 500ms);
//   for (std::size_t i : ready) ...               // indices into the list; empty on timeout
//
// Ready means: a queue's get() or a pipe's recv() would not block (a message is there, or a
// final error such as closed / end_of_stream), a process has exited. Readiness can be taken
// away by another consumer before you act on it, as with any readiness API: follow a wait with
// try_get()/recv_for() rather than get()/recv() when other consumers exist.
//
// A queue owned by another process asks its owner for data while it is waited on; whatever
// arrives waits in this process for its next get() (and goes back to the queue if the handle is
// dropped first).
//
// Thread safety: any thread; the objects may be used by other threads meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <span>
#include <system_error>
#include <vector>

#include "mproc/pipe.hpp"
#include "mproc/detail/readiness.hpp"
#include "mproc/process.hpp"

namespace mproc {

/// A reference to something mproc::wait can wait for. It must outlive the wait call.
class waitable {
 public:
  template <class T, bool CanPut>
  waitable(basic_queue<T, CanPut>& q)  // NOLINT: implicit, so a braced list of objects works
      : waitable(detail::queue_readiness<T, CanPut>{q}) {}

  template <class T, bool CanWrite>
  waitable(basic_pipe_end<T, true, CanWrite>& p)  // NOLINT: implicit, as above
      : waitable(detail::pipe_readiness<T, CanWrite>{p}) {}

  waitable(process& p);  // NOLINT: implicit, as above

  waitable(waitable&&) noexcept = default;
  waitable(const waitable&) = default;
  ~waitable();

 private:
  friend std::vector<std::size_t> wait(std::span<const waitable> objects, std::chrono::steady_clock::duration timeout,
                                       std::error_code& ec);
  template <class Readiness>
  explicit waitable(Readiness r)
      : watch_([r](std::error_code& ec) mutable { return r.watch(ec); }), unwatch_([r]() mutable { r.unwatch(); }) {}

  std::function<int(std::error_code&)> watch_;  // the fd to poll, or -1 with ec set
  std::function<void()> unwatch_;
};

/// Waits until at least one object is ready or `timeout` passed; returns the indices of the
/// ready ones, in list order (empty on timeout). Errors: an empty handle (invalid_argument),
/// SIGINT is not special here.
std::vector<std::size_t> wait(std::span<const waitable> objects,
                              std::chrono::steady_clock::duration timeout, std::error_code& ec);
std::vector<std::size_t> wait(std::span<const waitable> objects,
                              std::chrono::steady_clock::duration timeout = std::chrono::steady_clock::duration::max());
inline std::vector<std::size_t> wait(std::initializer_list<waitable> objects,
                                     std::chrono::steady_clock::duration timeout =
                                         std::chrono::steady_clock::duration::max()) {
  return wait(std::span<const waitable>{objects.begin(), objects.size()}, timeout);
}

}  // namespace mproc
