// mproc/detail/acquire_forms.hpp — the call forms every lock-like handle (lock, semaphore) offers,
// written once: each derives from acquire_forms<Self> and implements only
//   std::optional<acquired> acquire(duration timeout, std::error_code& ec);
//   void release(std::error_code& ec);
//   static constexpr const char* what;   // "mproc::lock", for error contexts
// (and says `using acquire_forms<Self>::acquire;`, since its own acquire hides these).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <system_error>

#include "mproc/error.hpp"
#include "mproc/hold_guard.hpp"

namespace mproc::detail {

template <class Self>
class acquire_forms {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// Blocks until held.
  acquired acquire() { return *acquire(duration::max()); }
  acquired acquire(std::error_code& ec) { return self().acquire(duration::max(), ec).value_or(acquired::normally); }
  /// Waits at most `timeout` (monotonic clock); nullopt when it ran out.
  std::optional<acquired> acquire(duration timeout) {
    std::error_code ec;
    auto r = self().acquire(timeout, ec);
    if (ec) throw error(ec, std::string{Self::what} + "::acquire");  // the text only when it fails
    return r;
  }
  /// Takes it only if free now.
  std::optional<acquired> try_acquire() { return acquire(duration::zero()); }
  void release() {
    std::error_code ec;
    self().release(ec);
    if (ec) throw error(ec, std::string{Self::what} + "::release");
  }
  /// Acquires and returns a guard that releases at scope exit.
  [[nodiscard]] hold_guard<Self> hold() { return {self(), acquire()}; }

 private:
  Self& self() noexcept { return static_cast<Self&>(*this); }
};

}  // namespace mproc::detail
