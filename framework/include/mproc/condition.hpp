// mproc/condition.hpp — a condition variable shared by the processes of a node
// (multiprocessing.Condition), with its own robust lock.
//
//   void consumer(mproc::condition c, mproc::value<int> items) {
//     auto held = c.hold();
//     c.wait_for([&] { return *items.get_obj() > 0; });     // lock held while it checks
//     --*items.get_obj();
//   }
//   // producer: { auto held = c.hold(); ++*items.get_obj(); c.notify(); }
//
// wait() and notify() need the caller to hold the condition's lock (errc::invalid_argument
// otherwise, where Python raises RuntimeError). wait() releases it, sleeps until notified or
// the timeout, and takes it back; it returns false when the timeout ran out. notify(n) wakes
// the n longest waiting, notify_all() every one. Differences from Python: the lock is a plain
// (non-recursive) mproc::lock created with the condition, not an RLock passed in.
//
// Crashes: the lock is robust, so a process killed while holding it never blocks the others;
// the next holder gets it (acquire()/hold() say acquired::after_owner_died; a wait() that takes
// it back that way still returns normally, so re-check your predicate — wait_for does). A
// waiter that is killed is skipped by notify: it never swallows a notification meant for a
// live one. Up to 64 waiters at a time; one more is errc::invalid_argument.
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only;
// it does not release a held lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <system_error>
#include <utility>

#include "mproc/detail/block_codec.hpp"
#include "mproc/detail/sync_block.hpp"
#include "mproc/hold_guard.hpp"

namespace mproc {

class condition {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// An empty handle.
  condition() = default;
  /// A new condition with its own lock.
  static condition create();
  /// Internal: the condition in a received block.
  static condition attach(shared_memory memory);

  bool valid() const noexcept { return block_.valid(); }

  /// The lock: acquire, release and hold as on mproc::lock.
  mproc::lock& get_lock() noexcept { return block_.guard_lock(); }
  acquired acquire() { return get_lock().acquire(); }
  std::optional<acquired> acquire(duration timeout) { return get_lock().acquire(timeout); }
  void release() { get_lock().release(); }
  void release(std::error_code& ec) { get_lock().release(ec); }
  [[nodiscard]] hold_guard<condition> hold() { return {*this, acquire()}; }

  /// Waits until notified (true) or `timeout` ran out (false); the lock is held again on return.
  bool wait(duration timeout = duration::max());
  bool wait(duration timeout, std::error_code& ec);
  /// Waits until pred() holds (checked first, then after every wake-up) or `timeout` ran out;
  /// returns pred()'s last value.
  template <class Predicate>
  bool wait_for(Predicate pred, duration timeout = duration::max()) {
    auto until = detail::deadline_after(timeout);
    bool ok = pred();
    while (!ok) {
      auto now = std::chrono::steady_clock::now();
      if (now >= until) break;
      wait(until == detail::forever ? duration::max() : until - now);
      ok = pred();
    }
    return ok;
  }
  /// Wakes up to `n` waiters, the longest waiting first.
  void notify(std::size_t n = 1);
  void notify(std::size_t n, std::error_code& ec);
  void notify_all();
  void notify_all(std::error_code& ec);

  const shared_memory& memory() const noexcept { return block_.memory(); }

 private:
  explicit condition(detail::sync_block block) : block_(std::move(block)) {}
  detail::sync_block block_;
};

/// A condition travels as an argument of a process, like its shared memory.
template <>
struct codec<condition> : detail::block_codec<condition> {};

}  // namespace mproc
