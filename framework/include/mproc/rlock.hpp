// mproc/rlock.hpp — a re-entrant lock shared by the processes of a node (multiprocessing.RLock),
// robust against a holder that dies.
//
//   void f(mproc::rlock r) {
//     auto outer = r.hold();
//     auto inner = r.hold();          // the owner may take it again; released after both go
//   }
//   auto r = mproc::rlock::create();
//   node.spawn(f, r);
//
// A process-shared, robust, recursive pthread mutex in anonymous shared memory. Its owner (a
// thread of some process) may acquire it again; it is free once released as often as acquired.
// When the owner dies holding it (SIGKILL included), the next acquirer gets it at once, with a
// recursion count of one, and is told: acquired::after_owner_died. Release by a thread that
// does not own it is errc::invalid_argument (Python raises RuntimeError).
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only
// (the shared memory goes with the last holder); it does not release a held rlock.
#pragma once

#include "mproc/detail/block_codec.hpp"
#include "mproc/hold_guard.hpp"
#include "mproc/lock.hpp"

namespace mproc {

class rlock {
 public:
  using duration = lock::duration;

  /// An empty handle.
  rlock() = default;
  /// A new, unlocked rlock in its own shared memory.
  static rlock create();
  /// Internal: the rlock in a received block.
  static rlock attach(shared_memory memory);

  bool valid() const noexcept { return lock_.valid(); }

  /// Blocks until held (at once when the caller owns it already).
  acquired acquire() { return lock_.acquire(); }
  acquired acquire(std::error_code& ec) { return lock_.acquire(ec); }
  /// Waits at most `timeout` (monotonic clock); nullopt when it ran out.
  std::optional<acquired> acquire(duration timeout) { return lock_.acquire(timeout); }
  std::optional<acquired> acquire(duration timeout, std::error_code& ec) { return lock_.acquire(timeout, ec); }
  std::optional<acquired> try_acquire() { return lock_.try_acquire(); }
  /// Undoes one acquire; errc::invalid_argument when the caller does not own it.
  void release() { lock_.release(); }
  void release(std::error_code& ec) { lock_.release(ec); }
  /// True when the calling thread owns it.
  bool held_by_this_thread() const noexcept { return lock_.held_by_this_thread(); }

  /// Acquires and returns a guard that releases once at scope exit.
  [[nodiscard]] hold_guard<rlock> hold() { return {*this, acquire()}; }

  const shared_memory& memory() const noexcept { return lock_.memory(); }

 private:
  lock lock_;
};

/// An rlock travels as an argument of a process, like its shared memory.
template <>
struct codec<rlock> : detail::block_codec<rlock> {};

}  // namespace mproc
