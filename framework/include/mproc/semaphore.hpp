// mproc/semaphore.hpp — a counting semaphore shared by the processes of a node
// (multiprocessing.Semaphore), robust against a holder that dies.
//
//   void worker(mproc::semaphore slots) {
//     auto held = slots.hold();          // at most 3 workers in here at once
//     ...
//   }
//   auto slots = mproc::semaphore::create(3);
//   for (int i = 0; i < 8; ++i) node.spawn(worker, slots);
//
// acquire() takes one unit, waiting while there is none; release() gives one back, and any
// process may release (a semaphore also serves as a signal). POSIX semaphores have no owner, so
// a killed holder would keep its units for ever; this one records, per process (pid and start
// time), the units it took and has not given back. A waiter looks for dead holders at least
// every 20 ms: the units of a process that died holding them return at once, and the acquirer
// that gets such a unit is told (acquired::after_owner_died). A process that drops its last
// handle (it returned, threw, or let it go) keeps what it took, as a signal is consumed. Up to 64 processes are tracked at a time; units held
// by further processes at that moment are not returned if they die.
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only
// (the shared memory goes with the last holder); it does not give back held units.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <system_error>

#include "mproc/detail/acquire_forms.hpp"
#include "mproc/detail/block_codec.hpp"
#include "mproc/detail/sync_block.hpp"
#include "mproc/hold_guard.hpp"

namespace mproc {

class semaphore : public detail::acquire_forms<semaphore> {
 public:
  using duration = std::chrono::steady_clock::duration;
  static constexpr const char* what = "mproc::semaphore";

  /// An empty handle.
  semaphore() = default;
  /// A new semaphore with `value` units.
  static semaphore create(unsigned value = 1);
  /// Internal: the semaphore in a received block.
  static semaphore attach(shared_memory memory);

  bool valid() const noexcept { return block_.valid(); }

  // acquire(), acquire(ec), acquire(timeout), try_acquire(), release(), hold(): acquire_forms.
  using acquire_forms<semaphore>::acquire;
  using acquire_forms<semaphore>::release;
  /// Takes a unit, waiting at most `timeout` (monotonic clock; duration::max(): no limit);
  /// nullopt when it ran out.
  std::optional<acquired> acquire(duration timeout, std::error_code& ec);
  /// Gives a unit back. A bounded_semaphore already at its initial value: errc::invalid_argument.
  void release(std::error_code& ec);
  /// The units free now (multiprocessing's get_value()).
  std::size_t get_value();

  const shared_memory& memory() const noexcept { return block_.memory(); }

  /// Internal, run when a process ends normally (a child's function returned or threw): the
  /// semaphores it still maps keep what it took, as when its last handle goes.
  static void keep_units_of_this_process() noexcept;

 protected:
  /// `bounded`: never more than `value` units.
  static semaphore create_with(unsigned value, bool bounded);
  /// Whether the shared state says bounded.
  bool bounded();

 private:
  explicit semaphore(detail::sync_block block);
  detail::sync_block block_;
};

/// A semaphore travels as an argument of a process, like its shared memory.
template <>
struct codec<semaphore> : detail::block_codec<semaphore> {};

}  // namespace mproc
