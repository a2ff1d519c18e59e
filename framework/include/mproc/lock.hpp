// mproc/lock.hpp — a lock shared by the processes of a node (multiprocessing.Lock), robust
// against a holder that dies.
//
//   void f(mproc::lock l, int i) {
//     auto held = l.hold();                 // RAII, like Python's `with l:`
//     std::cout << "this is " << i << '\n';
//   }
//   auto l = mproc::lock::create();
//   for (int i = 0; i < 10; ++i) node.spawn(f, l, i);
//
// A process-shared, robust, error-checking pthread mutex in anonymous shared memory
// (mproc/shared_memory.hpp). When the holder dies holding it (SIGKILL included), the next
// acquirer gets it at once and is told: acquire() returns acquired::after_owner_died, and the
// data it protects may be half-updated. Python's Lock deadlocks for ever in that case.
//
// Differences from Python: release() by a thread that does not hold the lock is
// errc::invalid_argument (Python's Lock lets anybody release; a robust lock needs an owner).
// The lock is not recursive: acquiring it twice from one thread is errc::invalid_argument
// instead of a self-deadlock.
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only
// (the shared memory goes with the last holder); it does not release a held lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <system_error>

#include "mproc/detail/acquire_forms.hpp"
#include "mproc/error.hpp"
#include "mproc/hold_guard.hpp"
#include "mproc/serialization.hpp"
#include "mproc/shared_memory.hpp"

namespace mproc {

class lock;
using lock_guard = hold_guard<lock>;

namespace detail {
/// The kind of pthread mutex a lock is built on (rlock is the recursive one).
enum class mutex_kind { error_checking, recursive };
}  // namespace detail

class lock : public detail::acquire_forms<lock> {
 public:
  using duration = std::chrono::steady_clock::duration;
  static constexpr const char* what = "mproc::lock";

  /// An empty handle.
  lock() = default;
  /// A new, unlocked lock in its own shared memory.
  static lock create();
  /// Internal: a lock placed at `offset` in `memory` (value<T> keeps one beside its data; rlock
  /// is a recursive one).
  static lock create_in(shared_memory memory, std::size_t offset,
                        detail::mutex_kind kind = detail::mutex_kind::error_checking);
  static lock attach(shared_memory memory, std::size_t offset);
  /// Bytes a lock takes in shared memory (its alignment is 64).
  static std::size_t footprint() noexcept;

  bool valid() const noexcept { return memory_.valid(); }

  // acquire(), acquire(ec), acquire(timeout), try_acquire(), release(), hold(): acquire_forms.
  using acquire_forms<lock>::acquire;
  using acquire_forms<lock>::release;
  /// Waits at most `timeout` (monotonic clock; duration::max(): no limit); nullopt when it ran out.
  std::optional<acquired> acquire(duration timeout, std::error_code& ec);
  void release(std::error_code& ec);

  /// True when the calling thread holds it (Python's Condition checks this before wait/notify).
  bool held_by_this_thread() const noexcept;

  const shared_memory& memory() const noexcept { return memory_; }
  std::size_t offset() const noexcept { return offset_; }

  /// Internal: acquire and release of the lock at `mutex`, for code that has the address but no
  /// handle (a block's last handle going away).
  static std::optional<acquired> acquire_at(void* mutex, duration timeout, std::error_code& ec);
  static void release_at(void* mutex, std::error_code& ec);

 private:
  void* mutex() const noexcept;
  shared_memory memory_;
  std::size_t offset_ = 0;
};


/// A lock travels as an argument of a process, like its shared memory.
template <>
struct codec<lock> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const lock& l) {
    mproc::encode(w, l.memory());
    mproc::encode(w, static_cast<std::uint64_t>(l.offset()));
  }
  static void decode(reader& r, lock& l) {
    shared_memory m;
    std::uint64_t offset = 0;
    mproc::decode(r, m);
    mproc::decode(r, offset);
    l = lock::attach(std::move(m), static_cast<std::size_t>(offset));
  }
};

}  // namespace mproc
