// mproc/hold_guard.hpp — holds a lock, rlock or semaphore for a scope (Python's `with l:`).
//
//   auto held = l.hold();              // acquired here
//   if (held.owner_died()) repair();   // its previous holder died holding it
//                                      // released when `held` goes, also on an exception
//
// Thread safety: a guard belongs to the thread that made it. Destructor: releases what it holds
// (errors on release are swallowed: a destructor cannot report them). Move-only.
#pragma once

#include <system_error>
#include <utility>

namespace mproc {

/// How a lock, rlock or semaphore was acquired.
enum class acquired {
  normally,
  after_owner_died,  ///< its previous holder died holding it: check what it protects
};

template <class Lockable>
class hold_guard {
 public:
  hold_guard(Lockable& l, acquired how) : held_(&l), how_(how) {}
  hold_guard(hold_guard&& o) noexcept : held_(std::exchange(o.held_, nullptr)), how_(o.how_) {}
  hold_guard& operator=(hold_guard&&) = delete;
  hold_guard(const hold_guard&) = delete;
  ~hold_guard() {
    std::error_code ec;
    if (held_ != nullptr) held_->release(ec);
  }
  /// True when the previous holder died holding it.
  bool owner_died() const noexcept { return how_ == acquired::after_owner_died; }

 private:
  Lockable* held_;
  acquired how_;
};

}  // namespace mproc
