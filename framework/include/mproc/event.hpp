// mproc/event.hpp — a flag processes wait for (multiprocessing.Event).
//
//   void worker(mproc::event go) { go.wait(); ... }
//   auto go = mproc::event::create();
//   node.spawn(worker, go);
//   go.set();                           // every waiter wakes, later waits return at once
//
// wait(timeout) returns the flag, as Python's does: false only when the timeout ran out first.
// Nothing is owned, so nothing is lost when a process dies: a waiter that is killed leaves the
// others as they were, and a setter killed inside set() leaves the flag either set or not (the
// internal lock is robust, so nobody blocks on it).
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only.
#pragma once

#include <chrono>
#include <system_error>
#include <utility>

#include "mproc/detail/block_codec.hpp"
#include "mproc/detail/sync_block.hpp"

namespace mproc {

class event {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// An empty handle.
  event() = default;
  /// A new event, not set.
  static event create();
  /// Internal: the event in a received block.
  static event attach(shared_memory memory);

  bool valid() const noexcept { return block_.valid(); }

  bool is_set();
  /// Sets the flag and wakes every waiter.
  void set();
  void clear();
  /// Blocks until the flag is set; returns true.
  bool wait() { return wait(duration::max()); }
  /// Waits at most `timeout` (monotonic clock); returns the flag.
  bool wait(duration timeout);

  const shared_memory& memory() const noexcept { return block_.memory(); }

 private:
  explicit event(detail::sync_block block) : block_(std::move(block)) {}
  void write(bool flag);
  detail::sync_block block_;
};

/// An event travels as an argument of a process, like its shared memory.
template <>
struct codec<event> : detail::block_codec<event> {};

}  // namespace mproc
