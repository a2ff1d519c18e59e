// mproc/barrier.hpp — a barrier for a fixed number of processes (multiprocessing.Barrier).
//
//   void step(mproc::barrier b) {
//     compute();
//     if (b.wait() == 0) std::cout << "all passed\n";   // indices 0 .. parties-1, one each
//   }
//   void announce();  MPROC_ENTRY(announce);            // the action, run once per passage
//   auto b = mproc::barrier::create(3, announce);
//
// wait() blocks until `parties` waiters have arrived, then lets them all pass; it returns the
// arrival index (the first to arrive gets 0, as threading.Barrier does). The last to arrive runs
// the action first, under the barrier's lock; an action that throws breaks the barrier and its
// exception reaches that waiter. The action must be registered with MPROC_ENTRY (it is found by
// name in each process, as a process's function is); an unregistered one is errc::unknown_entry.
//
// A broken barrier: every waiter, current and later, gets errc::broken_barrier (Python's
// BrokenBarrierError) until reset(). It breaks on abort(), on a waiter's timeout (that waiter's
// wait fails too), when the action throws, on reset() while processes wait (those get
// broken_barrier, as in Python), and — unlike Python, where this hangs — when a waiting
// process, or the process running the action, dies: the others notice within 20 ms.
// Up to 64 processes may wait at once (threads of one process count once).
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only.
#pragma once

#include <chrono>
#include <cstddef>
#include <system_error>
#include <utility>

#include "mproc/detail/block_codec.hpp"
#include "mproc/detail/sync_block.hpp"

namespace mproc {

class barrier {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// An empty handle.
  barrier() = default;
  /// A new barrier for `parties` (at least 1, else errc::invalid_argument) waiters, with an
  /// optional action and a default timeout for wait().
  static barrier create(std::size_t parties, void (*action)() = nullptr, duration timeout = duration::max());
  /// Internal: the barrier in a received block.
  static barrier attach(shared_memory memory);

  bool valid() const noexcept { return block_.valid(); }

  /// Waits (at most the default timeout) until all parties arrived; returns the arrival index.
  std::size_t wait();
  /// Waits at most `timeout` (monotonic clock); when it runs out the barrier breaks.
  std::size_t wait(duration timeout);
  std::size_t wait(duration timeout, std::error_code& ec);
  /// Back to the initial state; processes waiting now get errc::broken_barrier.
  void reset();
  /// Breaks it: waiters now and later get errc::broken_barrier until reset().
  void abort();

  std::size_t parties();
  /// How many wait now (0 while it is letting a group pass).
  std::size_t n_waiting();
  bool broken();

  const shared_memory& memory() const noexcept { return block_.memory(); }

 private:
  explicit barrier(detail::sync_block block) : block_(std::move(block)) {}
  detail::sync_block block_;
};

/// A barrier travels as an argument of a process, like its shared memory.
template <>
struct codec<barrier> : detail::block_codec<barrier> {};

}  // namespace mproc
