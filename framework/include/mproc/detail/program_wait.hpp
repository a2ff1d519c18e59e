// mproc/detail/program_wait.hpp — a blocking call of the program, as Ctrl-C sees it.
//
// On SIGINT the node hands the interrupt to the calls blocked at that moment (each reports
// errc::interrupted, so main can unwind) and re-raises SIGINT when none is (README, "Lifetime
// rules"). A blocking call makes one of these for the length of its wait, so the node counts it,
// and asks interrupted() when it wakes. Waits that the node does not wake by itself (a pool's
// results) wake every `check_interval` to ask, as the sync primitives look at their state.
// Waits of mproc's own (a pool's manager thread) are not the program's calls: there it does
// nothing.
//
// Thread safety: used by the thread that waits. Destructor: the call no longer counts as blocked.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

#include "mproc/error.hpp"

namespace mproc::detail {

class node_impl;

class program_wait {
 public:
  /// How long a wait that only interrupted() can end sleeps before it asks again.
  static constexpr std::chrono::milliseconds check_interval{20};

  /// A call of the program waiting on the current node's business (none: nothing to count).
  /// `ec` is errc::interrupted when a Ctrl-C came while nothing was blocked: this call is the
  /// first to hear of it and must not wait.
  explicit program_wait(std::error_code& ec) noexcept;
  /// The same for a wait on `owner`'s business (a process of that node; null: none).
  program_wait(std::error_code& ec, std::shared_ptr<node_impl> owner) noexcept;
  ~program_wait();
  program_wait(const program_wait&) = delete;
  program_wait& operator=(const program_wait&) = delete;

  /// True once a SIGINT reached the node since the call began. The call then reports
  /// errc::interrupted, also when what it waited for came meanwhile: the node may have counted
  /// on it and not re-raised SIGINT.
  bool interrupted() noexcept;
  /// True when the node counts this call as blocked (it may wake it on SIGINT).
  bool counted() const noexcept { return node_ != nullptr; }
  /// When to wake next for a wait until `until`: `check_interval` from now at the latest.
  static std::chrono::steady_clock::time_point next_check(std::chrono::steady_clock::time_point until) noexcept;

 private:
  std::shared_ptr<node_impl> node_;  // null: not the program's call, or no node handles SIGINT
  std::uint64_t sigints_ = 0;
};

/// Waits on `cv` (with `lock` held) until `pred()` holds or `until` passes, as a blocking call of
/// the program: a Ctrl-C meanwhile throws errc::interrupted (`what` names the call). Returns
/// pred(), as condition_variable::wait_until does.
template <class Pred>
bool interruptible_wait(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                        std::chrono::steady_clock::time_point until, Pred pred, const char* what) {
  if (pred()) return true;
  std::error_code ec;
  program_wait call{ec};
  while (!ec && !pred() && !call.interrupted() && std::chrono::steady_clock::now() < until)
    cv.wait_until(lock, program_wait::next_check(until));
  if (ec || call.interrupted()) throw error(errc::interrupted, what);
  return pred();
}

}  // namespace mproc::detail
