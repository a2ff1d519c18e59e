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

class rlock : public detail::acquire_forms<rlock> {
 public:
  using duration = lock::duration;
  static constexpr const char* what = "mproc::rlock";

  /// An empty handle.
  rlock() = default;
  /// A new, unlocked rlock in its own shared memory.
  static rlock create();
  /// Internal: the rlock in a received block.
  static rlock attach(shared_memory memory);

  bool valid() const noexcept { return lock_.valid(); }

  // acquire(), acquire(ec), acquire(timeout), try_acquire(), release(), hold(): acquire_forms.
  // Acquiring returns at once when the caller owns it already; hold() releases once.
  using acquire_forms<rlock>::acquire;
  using acquire_forms<rlock>::release;
  /// Waits at most `timeout` (monotonic clock); nullopt when it ran out.
  std::optional<acquired> acquire(duration timeout, std::error_code& ec) { return lock_.acquire(timeout, ec); }
  /// Undoes one acquire; errc::invalid_argument when the caller does not own it.
  void release(std::error_code& ec) { lock_.release(ec); }
  /// True when the calling thread owns it.
  bool held_by_this_thread() const noexcept { return lock_.held_by_this_thread(); }

  const shared_memory& memory() const noexcept { return lock_.memory(); }

 private:
  lock lock_;
};

/// An rlock travels as an argument of a process, like its shared memory.
template <>
struct codec<rlock> : detail::block_codec<rlock> {};

}  // namespace mproc
