// Internal: waits that mproc makes for itself are not the program's blocked calls.
//
// On SIGINT the node hands the interrupt to whatever call of the program is blocked at that
// moment (it throws errc::interrupted), and re-raises SIGINT when there is none
// (node_impl::on_sigint). A wait of mproc's own, such as a pool's manager thread joining a worker
// that died of that very SIGINT, must neither count as such a call nor take the interrupt: nobody
// would ever report it, and the program would run on after Ctrl-C.
//
// Thread safety: a scope marks only the thread that made it. Destructor: unmarks it (scopes nest).
#pragma once

namespace mproc::detail {

/// While one exists on a thread, process waits on that thread (join, is_alive) wait for the exit
/// alone: not counted as blocked calls, never ended by an interrupt, never taking one.
class internal_wait_scope {
 public:
  internal_wait_scope() noexcept;
  ~internal_wait_scope();
  internal_wait_scope(const internal_wait_scope&) = delete;
  internal_wait_scope& operator=(const internal_wait_scope&) = delete;

  /// True on a thread inside a scope.
  static bool active() noexcept;
};

}  // namespace mproc::detail
