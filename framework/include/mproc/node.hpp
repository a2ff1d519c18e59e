// mproc/node.hpp — the node manager: owns every process this program starts.
//
//   int main(int argc, char** argv) {
//     mproc::node node{argc, argv};      // first thing in main, like `if __name__ == "__main__"`
//     auto p = node.spawn(work, 42);      // a started mproc::process
//     p.join();
//   }
//
// Construct the node first in main(), in the thread that outlives it: with the spawn method and
// when a fork server must start as a fresh image, the program's own binary is executed again and
// `node`'s constructor is where that image turns into the child (it never returns there). Code
// before it runs in those images too, exactly as Python's spawn re-imports __main__.
//
// What the node guarantees:
//  - a private runtime directory (0700) under $MPROC_RUNTIME_DIR, $XDG_RUNTIME_DIR/mproc or
//    /tmp/mproc-<uid>; removed at shutdown, and reclaimed by the next node after a crash;
//  - one reaper: it waits for its own children only (by pidfd; the fork server reaps the ones it
//    forks), so it never races other waitpid users and leaves no zombies;
//  - no orphans: every child (and its children) dies with the node, also on SIGKILL
//    (PR_SET_PDEATHSIG, chained through fork servers);
//  - SIGINT (Ctrl-C): children are terminated and reaped; calls blocked at that moment throw
//    errc::interrupted; when no call was blocked the program then dies of SIGINT as usual.
//
// Thread safety: all members may be called from any thread.
//
// Destructor: terminates daemon children, joins the others (without a time limit, as Python
// does; SIGINT interrupts it), delivers this process's pending queue puts and ends the queues
// it owns (their handles elsewhere then report errc::node_closed), stops the fork server and
// removes the runtime directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mproc/process.hpp"
#include "mproc/start_method.hpp"

namespace mproc {

template <class T, bool CanPut>
class basic_queue;
template <class T>
using queue = basic_queue<T, true>;

/// If this image of the program was started by mproc (spawn start method, or a fork server
/// started as a fresh image), runs that role and never returns; otherwise returns at once.
/// node's constructor calls it; call it yourself first in main() when main does other work
/// before it constructs a node (a test runner, say), as Python programs call freeze_support().
void maybe_run_child();

struct node_options {
  /// Default start method for processes of this node (a process may override it).
  start_method method = start_method::forkserver;
  /// Install the SIGINT behaviour described above.
  bool handle_sigint = true;
  /// How long terminate-at-shutdown and SIGINT wait after SIGTERM before sending SIGKILL.
  std::chrono::milliseconds kill_grace{1000};
  /// Parent directory for the runtime directory; empty picks the default described above.
  std::filesystem::path runtime_root;
};

namespace detail {
class node_impl;
struct node_access;
}

class node {
 public:
  node();
  node(int argc, char** argv);
  explicit node(node_options options);
  node(int argc, char** argv, node_options options);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// The node of the calling process: the one main() constructed, or inside a child the one
  /// mproc made for it. Throws errc::no_node when there is none.
  static node& current();
  static node* current_or_null() noexcept;

  /// Creates and starts a process running fn(args...); see process's target constructor.
  template <class Fn, class... Args>
  process spawn(Fn&& fn, Args&&... args) {
    process p{*this, std::forward<Fn>(fn), std::forward<Args>(args)...};
    p.start();
    return p;
  }

  /// A new queue owned by this process (mproc/queue.hpp); maxsize 0 means unbounded.
  template <class T>
  queue<T> make_queue(std::size_t maxsize = 0);

  const node_options& options() const noexcept;
  /// The private runtime directory (created on first use in child processes).
  const std::filesystem::path& runtime_dir();
  /// Pids of the children that are still running (multiprocessing.active_children()).
  std::vector<pid_t> active_children() const;
  /// The pid of the fork server, 0 when none runs (yet).
  pid_t forkserver_pid() const noexcept;

  detail::node_impl& impl() noexcept { return *impl_; }

 private:
  friend struct detail::node_access;
  explicit node(std::shared_ptr<detail::node_impl> impl);
  std::shared_ptr<detail::node_impl> impl_;
};

}  // namespace mproc
