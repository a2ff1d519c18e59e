// mproc/remote_process.hpp — a process that runs on another node of the cluster.
//
//   void crunch(int n) { ... }
//   MPROC_ENTRY(crunch);                                   // in both programs
//   mproc::cluster::remote_process p = b.spawn_process(crunch, 42);   // b: a remote_node
//   p.join();                                              // its exit code: p.exitcode()
//
// The process is a child of the remote node (its start method, its no-orphan rules). When this
// node ends or its connection to that node is lost, the remote node terminates the processes this
// node started there (SIGTERM, then SIGKILL after its grace period): no orphans across hosts.
//
// Thread safety: every member may be called from any thread; copies share one process.
// Destructor: nothing (the process keeps running, as with mproc::process; see above for when
// the remote node ends it).
#pragma once

#include <sys/types.h>

#include <caf/actor.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <system_error>

namespace mproc::cluster {

namespace detail {
struct remote_process_state;
}

class remote_process {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// An empty handle.
  remote_process() noexcept;

  /// Its pid on the remote host.
  pid_t pid() const noexcept;

  /// Waits until it exits. Throws mproc::error: node_lost (the node died or was cut off; the
  /// process is then terminated there if the node still runs), invalid_argument (empty handle).
  void join();
  void join(std::error_code& ec);
  /// Waits at most `timeout`; true once it has exited.
  bool join(duration timeout);
  bool join(duration timeout, std::error_code& ec);

  /// nullopt while it runs; then 0, the exit status, 1 after an exception, or -signal (as
  /// mproc::process::exitcode). Asks the remote node until the answer is final.
  std::optional<int> exitcode() const;
  bool is_alive() const { return !exitcode().has_value(); }

  /// SIGTERM / SIGKILL through the remote node. No-op once it has exited.
  void terminate();
  void terminate(std::error_code& ec);
  void kill();
  void kill(std::error_code& ec);

  struct access {
    static remote_process make(caf::actor actor, pid_t pid, std::chrono::milliseconds timeout);
  };

 private:
  friend struct access;
  explicit remote_process(std::shared_ptr<detail::remote_process_state> state) noexcept;
  void signal(int sig, std::error_code& ec);
  std::shared_ptr<detail::remote_process_state> state_;
};

}  // namespace mproc::cluster
