// Helpers shared by the mproc tests: /proc inspection (robust against pid reuse), a watchdog that
// also cleans up children, temporary directories and a small subprocess runner for the helper
// programs. Everything here is real: real processes, real signals, real /proc.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <mproc/node.hpp>
#include <mproc/process.hpp>
#include <mproc/start_method.hpp>

#include "temp_dir.hpp"

namespace mproc::test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// ---- start methods ----------------------------------------------------------------------

inline mproc::node_options with_method(mproc::start_method m) {
  mproc::node_options o;
  o.method = m;
  return o;
}

inline mproc::node_options with_root(const std::filesystem::path& root) {
  mproc::node_options o;
  o.runtime_root = root;
  return o;
}

/// For INSTANTIATE_TEST_SUITE_P(..., all_start_methods(), method_name).
inline auto all_start_methods() {
  return testing::Values(mproc::start_method::forkserver, mproc::start_method::spawn, mproc::start_method::fork);
}
inline std::string method_name(const testing::TestParamInfo<mproc::start_method>& info) {
  return std::string{mproc::to_string(info.param)};
}
mproc::start_method parse_method(const std::string& name);

// ---- /proc ------------------------------------------------------------------------------

struct proc_stat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
  unsigned long long starttime = 0;  // field 22, clock ticks since boot
};

/// /proc/<pid>/stat, or nullopt when the pid does not exist.
std::optional<proc_stat> read_stat(pid_t pid);

/// A process, identified by pid *and* start time, so a recycled pid is never mistaken for it.
struct proc_ref {
  pid_t pid = 0;
  unsigned long long starttime = 0;
};
/// The identity of a process that exists now (starttime 0 when it does not).
proc_ref ref_of(pid_t pid);
/// True while the process exists and is not a zombie.
bool running(const proc_ref& p);
bool running(pid_t pid);
/// Waits up to `limit` for the process to be gone (or a zombie of someone else's).
bool gone_within(const proc_ref& p, std::chrono::milliseconds limit);

/// Direct children of `parent` (every state, zombies included), from /proc/*/stat.
std::vector<pid_t> children_of(pid_t parent);
/// Children of `parent` in state Z.
std::vector<pid_t> zombie_children(pid_t parent);
/// /proc/<pid>/task/*/children: what the kernel lists as children of each thread.
std::vector<pid_t> task_children(pid_t pid);
/// Every descendant of `root` (children, grandchildren, ...), not including root.
std::vector<pid_t> descendants_of(pid_t root);

/// Open descriptors of the calling process (without the one used to list them), fd -> target.
std::vector<std::pair<int, std::string>> open_fds();
/// Open descriptors of another process, from /proc/<pid>/fd.
std::vector<std::pair<int, std::string>> open_fds_of(pid_t pid);
/// The `flags:` field of /proc/self/fdinfo/<fd> (octal in the file), or -1.
long fd_flags(int fd);

/// Polls `cond` every few ms until it holds or `limit` passes; returns its last value.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 3000ms);

/// Waits (up to `limit`) until the main thread of `pid` sleeps in futex() and still does 20 ms
/// later: a caller blocked in a call such as join(), not one passing a lock.
bool main_thread_blocks(pid_t pid, std::chrono::milliseconds limit = 10000ms);

/// In a producer process whose copy of a value must stall half-way: makes the whole pages inside
/// [begin, begin + size) unreadable until the file `go_ahead` exists. A read of them then waits
/// for it (10 s at most) in a SIGSEGV handler, makes them readable again and goes on. False when
/// they could not be protected. One at a time per process.
bool stall_reads_until(const void* begin, std::size_t size, const std::string& go_ahead);
/// Whether a read stalled by stall_reads_until gave up waiting for its go-ahead.
bool stall_gave_up();

/// Runs `f`, a call given `timeout`, and expects it to have waited that long on the monotonic
/// clock, but not for ever (under 5 s).
void expect_waits_out(std::chrono::milliseconds timeout, const std::function<void()>& f);

std::string read_file(const std::filesystem::path& path);

// ---- cleanup ----------------------------------------------------------------------------

/// Watchdog and cleanup for one multi-process test. Declare it *after* the node (so it is
/// destroyed first). It
///  - arms a SIGALRM watchdog: when the test is still running after `limit`, it reports it,
///    SIGKILLs every registered process and every descendant of this process (so blocked joins
///    return and the test fails instead of hanging), and aborts if that does not help either;
///  - at scope exit SIGKILLs every registered process that is still there (through a pidfd, so
///    never a recycled pid) and, when the test has failed, every descendant of this process, so
///    a failed assertion never leaves a child behind or hangs the node's destructor.
/// One guard at a time per process.
class guard {
 public:
  explicit guard(std::chrono::seconds limit = 30s);
  ~guard();
  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;

  void add(pid_t pid);
  void add(const mproc::process& p) { add(p.pid()); }
  /// True once the watchdog fired.
  static bool fired();
};

// ---- sanitizers -------------------------------------------------------------------------

/// True in the TSan build (MPROC_SANITIZE=thread: g++ defines __SANITIZE_THREAD__).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool under_tsan = true;
#else
inline constexpr bool under_tsan = false;
#endif

/// Why MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN skips (docs/testing.md, "Sanitizers").
inline constexpr const char* fork_child_threads_under_tsan =
    "skipped under TSan: with the fork method the child of this multi-threaded test starts "
    "threads, which TSan does not support (its record still lists the parent's threads, and a "
    "new thread on one of their reused stacks dies of \"dup thread with used id\", exit 66)";

/// First thing in a test whose child, started with `method`, starts threads (a queue's I/O
/// thread): skips it in the TSan build when `method` is fork, with the reason. Other builds,
/// and the other start methods under TSan, run it.
#define MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(method)                                   \
  do {                                                                                   \
    if (::mproc::test::under_tsan && (method) == ::mproc::start_method::fork)            \
      GTEST_SKIP() << ::mproc::test::fork_child_threads_under_tsan;                      \
  } while (false)

// ---- fixtures ---------------------------------------------------------------------------

/// A test run once per start method: a node whose default is that method, and a guard
/// (declared after the node, so it cleans up before the node's destructor joins anything).
class method_test : public testing::TestWithParam<mproc::start_method> {
 protected:
  mproc::node node{with_method(GetParam())};
  guard watchdog{30s};

  /// Creates, starts and registers with the guard a process running fn(args...).
  template <class Fn, class... Args>
  mproc::process start(Fn&& fn, Args&&... args) {
    mproc::process p{node, std::forward<Fn>(fn), std::forward<Args>(args)...};
    p.start();
    watchdog.add(p);
    return p;
  }
  /// Joins (with a generous deadline) and returns the exit code, or -1000 on timeout.
  static int finish(mproc::process& p, std::chrono::seconds limit = 20s) {
    if (!p.join(limit)) return -1000;
    return p.exitcode().value_or(-2000);
  }
  /// Starts fn(args...) in a child, joins it, and returns its exit code (as finish()).
  template <class Fn, class... Args>
  int run_child(Fn fn, Args&&... args) {
    auto p = start(fn, std::forward<Args>(args)...);
    return finish(p);
  }
};

/// A test that starts external commands or other children by hand (no node): a watchdog, and
/// at the end no zombie child of this process, so every child it started was reaped.
class reaping_test : public testing::Test {
 protected:
  guard watchdog{30s};
  void TearDown() override { EXPECT_TRUE(zombie_children(::getpid()).empty()); }
};

// ---- helper programs --------------------------------------------------------------------

/// Runs a program (posix_spawn) with stdout on a pipe. The destructor SIGKILLs and reaps it.
class subprocess {
 public:
  struct options {
    bool own_process_group = false;  // setpgid(0, 0): a "terminal" of its own for group signals
  };
  subprocess(std::vector<std::string> argv, options opts);
  explicit subprocess(std::vector<std::string> argv) : subprocess(std::move(argv), options{}) {}
  ~subprocess();
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;

  pid_t pid() const { return pid_; }
  /// The next line of its stdout (without '\n'), or nullopt on EOF or after `limit`.
  std::optional<std::string> read_line(std::chrono::milliseconds limit);
  /// Everything it writes until EOF or `limit`.
  std::string read_rest(std::chrono::milliseconds limit);
  /// Waits up to `limit` for it to exit; returns the wait status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds limit);

 private:
  pid_t pid_ = 0;
  int out_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

/// What a helper program announced on stdout, one "<what> <value>" line each (the value is
/// usually a pid). Lines of several processes share the pipe, so they come in any order.
struct announcements {
  std::vector<std::pair<std::string, std::string>> lines;
  /// The value of the first line announcing `what`, or nullopt.
  std::optional<std::string> get(const std::string& what) const;
  /// The pid announced as `what`, or 0.
  pid_t pid(const std::string& what) const;
  /// Every announced value that is a pid.
  std::vector<pid_t> pids() const;
  /// All lines, for failure messages.
  std::string show() const;
};
/// Reads p's announcements until every word in `until` has been seen, or EOF, or `limit`.
announcements read_announcements(subprocess& p, std::set<std::string> until, std::chrono::milliseconds limit);

}  // namespace mproc::test
