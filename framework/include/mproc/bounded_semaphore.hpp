// mproc/bounded_semaphore.hpp — a semaphore that refuses to grow past its initial value
// (multiprocessing.BoundedSemaphore).
//
//   auto pool = mproc::bounded_semaphore::create(2);
//   pool.release(ec);                 // ec == errc::invalid_argument: released too many times
//
// Everything else is mproc::semaphore (robust against a holder that dies, too). Python raises
// ValueError on the extra release; mproc says errc::invalid_argument and the value is unchanged.
//
// Thread safety: any number of threads and processes. Destructor: releases this handle only.
#pragma once

#include "mproc/semaphore.hpp"

namespace mproc {

class bounded_semaphore : public semaphore {
 public:
  /// An empty handle.
  bounded_semaphore() = default;
  /// A new semaphore with `value` units, never more.
  static bounded_semaphore create(unsigned value = 1);
  /// Internal: the bounded semaphore in a received block (errc::bad_message when it is not one).
  static bounded_semaphore attach(shared_memory memory);

 private:
  explicit bounded_semaphore(semaphore s) : semaphore(std::move(s)) {}
};

template <>
struct codec<bounded_semaphore> : detail::block_codec<bounded_semaphore> {};

}  // namespace mproc
