// Internal: the node manager's machinery.
//
// One I/O thread (Boost.Asio) does all the waiting: it watches the fork server's socket (spawn
// replies, exit reports), the pidfd of each direct child (spawn and fork start methods), and
// SIGINT. Callers block on their process_state's condition variable, never on a socket.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fd.hpp"
#include "fork_gate.hpp"
#include "mproc/node.hpp"
#include "process_state.hpp"

namespace mproc::detail {

/// Messages on the node<->fork server socket (SOCK_SEQPACKET, one per datagram).
struct forkserver_message {
  enum kind_t : std::uint8_t { spawn = 1, spawned = 2, exited = 3 } kind;
  std::uint64_t id;     // spawn/spawned: the request
  std::int32_t pid;     // spawned/exited
  std::int32_t value;   // spawned: errno of a failed fork (0 = ok); exited: wait status
};

class node_impl : public std::enable_shared_from_this<node_impl> {
 public:
  /// `child`: the node mproc makes inside a child process (no eager fork server, no SIGINT
  /// handling; its processes are named "process-<identity>:N").
  node_impl(node_options options, bool child, std::string identity);
  ~node_impl();

  /// Main-node start-up: runtime dir, fork server (before any thread), I/O thread.
  void open(std::error_code& ec);
  void start(process& p, std::error_code& ec);
  /// Terminates daemons, joins the rest, stops the fork server and the I/O thread.
  void shutdown() noexcept;

  const node_options& options() const noexcept { return options_; }
  const std::filesystem::path& runtime_dir(std::error_code& ec);
  std::vector<pid_t> active_children() const;
  pid_t forkserver_pid() const noexcept { return forkserver_pid_; }

  /// Blocking-call bookkeeping, so SIGINT knows whether anybody is waiting.
  void enter_wait() noexcept { ++blocked_; }
  void leave_wait() noexcept { --blocked_; }
  /// True once for a SIGINT that arrived while no call was blocked; the caller reports it
  /// (errc::interrupted) instead of the node re-raising SIGINT.
  bool take_pending_interrupt() noexcept { return reraise_pending_.exchange(false); }
  /// True when this node handles SIGINT (the main node with handle_sigint).
  bool handles_sigint() const noexcept { return sigint_installed_; }
  /// A blocked call reports errc::interrupted for the SIGINTs counted up to `count`, so
  /// on_sigint() must not also re-raise them.
  void claim_sigint(std::uint64_t count) noexcept;
  /// Starts the node's I/O thread and, if asked, its fork server (the actor runtime calls it
  /// before CAF starts threads, so the server can still be forked cheaply).
  void ensure_running(bool want_forkserver, std::error_code& ec);

 private:
  void start_forkserver(std::error_code& ec);
  void start_io_thread();
  void run_on_io(const std::function<void()>& f);

  void spawn_forked(process& p, process_state& s, const std::string& identity, unique_fd child_end,
                    std::error_code& ec);
  void spawn_exec(process_state& s, unique_fd child_end, std::error_code& ec);
  void spawn_via_forkserver(const std::shared_ptr<process_state>& s, unique_fd child_end,
                            const std::vector<std::byte>& start_frame, std::error_code& ec);
  void send_start(process_state& s, const std::vector<std::byte>& start_frame);
  const std::vector<std::string>& argv();

  /// The processes in the table, copied under its lock (callers then lock each state alone).
  std::vector<std::shared_ptr<process_state>> snapshot() const;
  /// Removes and returns map[key] under the table lock; nullptr when absent.
  template <class Map>
  std::shared_ptr<process_state> take(Map& map, typename Map::key_type key);

  void watch_forkserver();
  void on_forkserver_readable();
  void watch_direct_child(const std::shared_ptr<process_state>& s);
  void finish(const std::shared_ptr<process_state>& s, int exitcode,
              std::optional<remote_exception> lost = std::nullopt);

  void watch_sigint();
  /// Runs on_sigint() once for each SIGINT counted since the last call (I/O thread only).
  void check_sigint();
  void on_sigint();
  void escalate_after(std::chrono::milliseconds grace);
  void maybe_reraise_sigint();

  void signal_all(int sig, bool daemons_only);
  void wait_all(std::chrono::steady_clock::time_point until, bool daemons_only);

  node_options options_;
  bool child_;
  std::string identity_;  // prefix for names of this node's processes
  std::filesystem::path runtime_dir_;
  std::vector<std::string> argv_;  // for exec'ing this program again (read on first use)
  std::once_flag argv_once_;

  pid_t forkserver_pid_ = 0;
  bool forkserver_reaped_ = false;  // it died and the I/O thread reaped it (I/O thread, then shutdown)
  unique_fd forkserver_sock_;
  std::mutex forkserver_write_;

  mutable std::mutex table_mutex_;
  std::map<std::uint64_t, std::shared_ptr<process_state>> table_;  // started, not yet exited
  std::map<std::uint64_t, std::shared_ptr<process_state>> pending_;  // awaiting the fork server
  std::map<pid_t, std::shared_ptr<process_state>> by_pid_;           // fork server's children
  std::atomic<std::uint64_t> counter_{0};

  boost::asio::io_context io_;
  std::optional<boost::asio::posix::stream_descriptor> forkserver_watch_;
  std::optional<boost::asio::posix::stream_descriptor> sigint_watch_;  // woken by the SIGINT handler
  std::uint64_t sigints_handled_ = 0;                                   // I/O thread only
  std::atomic<bool> sigint_installed_{false};
  struct sigaction previous_sigint_ {};
  std::optional<boost::asio::steady_timer> kill_timer_;
  std::thread io_thread_;
  std::optional<fork_gate_registration> fork_gate_;
  std::mutex start_mutex_;  // serializes lazy start-up
  bool io_running_ = false;

  std::atomic<int> blocked_{0};
  std::atomic<bool> closing_{false};
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> reraise_pending_{false};
  std::atomic<std::uint64_t> sigint_claimed_{0};
  bool shut_down_ = false;
};

/// Runs `hook` when the current node of this process is destroyed, before its children are
/// joined (the actor runtime closes its connections there, so hosts end). Hooks run newest first.
void at_node_shutdown(std::function<void()> hook);

/// The process-wide current node (set by node's constructor, cleared by its destructor).
node* current_node() noexcept;
void set_current_node(node* n) noexcept;

}  // namespace mproc::detail
