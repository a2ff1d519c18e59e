// mproc/detail/sync_block.hpp — the shared memory every synchronization primitive but lock is
// made of: a robust internal lock, a wake-up word, then the primitive's own state.
//
// Waiting is a futex on the wake-up word, not a pthread condition variable: glibc's condition
// variable (2.36) keeps per-waiter references that a waiter killed inside pthread_cond_wait
// never gives back, and the next signal can then block for ever. A futex keeps no state of its
// waiters. Every waiter also wakes at least every `recheck_period`, so it notices a process that
// died without telling anybody (see docs/rationale.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <new>

#include "mproc/detail/deadline.hpp"
#include "mproc/lock.hpp"
#include "mproc/shared_memory.hpp"

namespace mproc::detail {

class sync_block {
 public:
  /// The longest a waiter sleeps before it looks for dead holders again (the 100 ms promise of
  /// a semaphore whose holder was killed rests on it).
  static constexpr std::chrono::milliseconds recheck_period{20};

  sync_block() = default;
  /// A new block with `state_size` zero bytes of state.
  static sync_block create(std::size_t state_size, mutex_kind kind = mutex_kind::error_checking);
  /// A received block; errc::bad_message when it cannot hold `state_size` bytes of state.
  static sync_block attach(shared_memory memory, std::size_t state_size);

  bool valid() const noexcept { return memory_.valid(); }
  const shared_memory& memory() const noexcept { return memory_; }
  /// Holds the internal lock; errc::invalid_argument for an empty handle (`who` names it).
  [[nodiscard]] lock_guard hold(const char* who);
  /// The internal lock, which guards the state.
  mproc::lock& guard_lock() noexcept { return lock_; }
  /// The state, to be touched only with the lock held.
  template <class State>
  State& state() const noexcept {
    return *std::launder(static_cast<State*>(state_address()));
  }

  /// The state of the block mapped at `base`, for code that has no handle.
  template <class State>
  static State& state_at(void* base) noexcept {
    return *std::launder(static_cast<State*>(state_address(base)));
  }

  /// With the lock held: releases it, sleeps until notify_all(), `until` or one recheck period,
  /// whichever comes first, and takes it back. Says how the lock came back.
  acquired wait(deadline until);
  /// Wakes every waiter of this block (call after changing the state, lock held or not).
  void notify_all() noexcept;

 private:
  void* state_address() const noexcept { return state_address(memory_.data()); }
  static void* state_address(void* base) noexcept;
  void* wake_word() const noexcept;
  shared_memory memory_;
  mproc::lock lock_;
};

}  // namespace mproc::detail
