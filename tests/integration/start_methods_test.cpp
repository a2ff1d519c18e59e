// The three start methods really are what they promise: which program image the child runs in,
// who its OS parent is, defaults and overrides, the fork server started as a fresh image when
// threads already run, concurrent starts, and the fork server dying under the node.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <latch>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;
using mproc::test::read_file;

namespace {

// 0 in a fresh image of the program, 1 once set before the node (so in the fork server's copy),
// 2 once set after it (so only in a direct fork of the test's process).
int marker = 0;

void exit_with_marker() { std::exit(marker); }
void exit_with(int code) { std::exit(code); }
void sleep_long() { std::this_thread::sleep_for(60s); }
void throw_error() { throw std::runtime_error("from a fresh image"); }
void report_os_parent(std::string file) { std::ofstream{file} << ::getppid() << ' ' << mproc::parent_pid(); }
void report_node_method(std::string file) {
  std::ofstream{file} << static_cast<int>(mproc::node::current().options().method);
}
void check_environment_is_clean() {
  bool clean = std::getenv("MPROC_ROLE") == nullptr && std::getenv("MPROC_FD") == nullptr &&
               std::getenv("MPROC_PARENT_PID") == nullptr;
  std::exit(clean ? 0 : 1);
}

}  // namespace

MPROC_ENTRY(exit_with_marker);
MPROC_ENTRY(exit_with);
MPROC_ENTRY(sleep_long);
MPROC_ENTRY(throw_error);
MPROC_ENTRY(report_os_parent);
MPROC_ENTRY(report_node_method);
MPROC_ENTRY(check_environment_is_clean);

namespace {

struct marker_reset {
  ~marker_reset() { marker = 0; }
};

int run_with(mproc::node& node, mproc::test::guard& watchdog, start_method m, void (*fn)()) {
  mproc::process p{node, fn};
  p.set_start_method(m);
  p.start();
  watchdog.add(p);
  if (!p.join(20s)) return -1000;
  return *p.exitcode();
}

TEST(start_methods, each_runs_in_the_image_it_promises) {
  marker_reset reset;
  marker = 1;
  mproc::node node;  // forkserver: the server is forked here, before any thread
  mproc::test::guard watchdog;
  marker = 2;
  EXPECT_EQ(run_with(node, watchdog, start_method::forkserver, exit_with_marker), 1)
      << "a forkserver child is a copy of the fork server, forked when the node was made";
  EXPECT_EQ(run_with(node, watchdog, start_method::spawn, exit_with_marker), 0)
      << "a spawn child is a fresh image of the program";
  EXPECT_EQ(run_with(node, watchdog, start_method::fork, exit_with_marker), 2)
      << "a fork child is a copy of the calling process as it is now";
}

TEST(start_methods, os_parent_is_the_fork_server_or_the_node) {
  mproc::node node;
  mproc::test::guard watchdog;
  mproc::test::temp_dir dir;
  ASSERT_GT(node.forkserver_pid(), 0);
  for (auto m : {start_method::forkserver, start_method::spawn, start_method::fork}) {
    auto file = (dir / std::string{mproc::to_string(m)}).string();
    mproc::process p{node, report_os_parent, file};
    p.set_start_method(m);
    p.start();
    watchdog.add(p);
    ASSERT_TRUE(p.join(20s));
    ASSERT_EQ(p.exitcode(), 0);
    pid_t os_parent = 0, mproc_parent = 0;
    std::istringstream{read_file(file)} >> os_parent >> mproc_parent;
    EXPECT_EQ(os_parent, m == start_method::forkserver ? node.forkserver_pid() : ::getpid()) << mproc::to_string(m);
    EXPECT_EQ(mproc_parent, ::getpid()) << mproc::to_string(m) << ": parent_pid() is the node's process";
  }
}

TEST(start_methods, fork_server_is_a_child_of_the_node) {
  mproc::node node;
  pid_t fs = node.forkserver_pid();
  ASSERT_GT(fs, 0);
  EXPECT_NE(fs, ::getpid());
  auto st = mproc::test::read_stat(fs);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->ppid, ::getpid());
  EXPECT_NE(st->state, 'Z');
}

TEST(start_methods, node_default_and_per_process_override) {
  mproc::node node{mproc::test::with_method(start_method::spawn)};
  mproc::test::guard watchdog;
  EXPECT_EQ(node.options().method, start_method::spawn);
  EXPECT_EQ(node.forkserver_pid(), 0) << "no fork server before one is needed";
  mproc::process a{node, exit_with, 3};
  EXPECT_EQ(a.method(), start_method::spawn);
  mproc::process b{node, exit_with, 4};
  b.set_start_method(start_method::fork);
  EXPECT_EQ(b.method(), start_method::fork);
  a.start();
  watchdog.add(a);
  b.start();
  watchdog.add(b);
  ASSERT_TRUE(a.join(20s) && b.join(20s));
  EXPECT_EQ(a.exitcode(), 3);
  EXPECT_EQ(b.exitcode(), 4);
  EXPECT_EQ(a.method(), start_method::spawn);
  EXPECT_EQ(b.method(), start_method::fork);
}

TEST(start_methods, fork_server_started_late_is_a_fresh_image) {
  // A spawn node already runs its I/O thread, so a fork server it needs later cannot be a clean
  // fork of it: it must be a fresh image (marker 0), and it must work.
  marker_reset reset;
  marker = 1;
  mproc::node node{mproc::test::with_method(start_method::spawn)};
  mproc::test::guard watchdog;
  EXPECT_EQ(run_with(node, watchdog, start_method::spawn, exit_with_marker), 0);  // starts the I/O thread
  EXPECT_EQ(node.forkserver_pid(), 0);
  EXPECT_EQ(run_with(node, watchdog, start_method::forkserver, exit_with_marker), 0);
  EXPECT_GT(node.forkserver_pid(), 0);
  EXPECT_EQ(run_with(node, watchdog, start_method::forkserver, exit_with_marker), 0);
}

TEST(start_methods, node_made_while_threads_run_gets_a_fresh_fork_server) {
  // Python's rule: a fork server forked from a multi-threaded process is not clean.
  marker_reset reset;
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::thread busy{[&] {
    std::unique_lock lock{m};
    cv.wait(lock, [&] { return release; });  // holds no lock the children could need
  }};
  struct joiner {
    std::thread& t;
    std::mutex& m;
    std::condition_variable& cv;
    bool& release;
    ~joiner() {
      {
        std::lock_guard lock{m};
        release = true;
      }
      cv.notify_all();
      t.join();
    }
  } join_busy{busy, m, cv, release};
  marker = 1;
  mproc::node node;
  mproc::test::guard watchdog;
  marker = 2;
  ASSERT_GT(node.forkserver_pid(), 0);
  EXPECT_EQ(run_with(node, watchdog, start_method::forkserver, exit_with_marker), 0) << "not a fresh image";
  mproc::process p{node, throw_error};
  p.start();
  watchdog.add(p);
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 1);
  ASSERT_TRUE(p.exception());
  EXPECT_EQ(p.exception()->message, "from a fresh image");
  auto st = mproc::test::read_stat(node.forkserver_pid());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->ppid, ::getpid());
}

TEST(start_methods, exec_images_do_not_see_mproc_role_variables) {
  mproc::node node;
  mproc::test::guard watchdog;
  for (auto m : {start_method::forkserver, start_method::spawn, start_method::fork})
    EXPECT_EQ(run_with(node, watchdog, m, check_environment_is_clean), 0) << mproc::to_string(m);
}

class method_param : public mproc::test::method_test {};

TEST_P(method_param, the_childs_node_defaults_to_the_parents_method) {
  mproc::test::temp_dir dir;
  auto p = start(report_node_method, (dir / "m").string());
  ASSERT_EQ(finish(p), 0);
  EXPECT_EQ(std::stoi(read_file(dir / "m")), static_cast<int>(GetParam()));
}

TEST_P(method_param, concurrent_starts_from_several_threads) {
  constexpr int threads = 4, each = 4;
  // fork() while other threads run is the fork method's documented hazard: a child can inherit
  // a lock another thread held at that moment (ASan's allocator's, say) and hang. So with fork
  // the threads take turns starting, and nothing else runs meanwhile: every thread waits at
  // `go` until all exist, and at `started` until all have started theirs (thread exit allocates
  // too). They join concurrently in every case.
  bool take_turns = GetParam() == start_method::fork;
  std::latch go{1}, started{threads};
  std::vector<std::thread> ts;
  std::atomic<int> right{0};
  std::mutex m, turn;
  std::vector<pid_t> pids;
  pids.reserve(threads * each);
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::vector<mproc::process> ps;
      ps.reserve(each);
      go.wait();
      for (int i = 0; i < each; ++i) {
        std::unique_lock my_turn{turn, std::defer_lock};
        if (take_turns) my_turn.lock();
        ps.push_back(node.spawn(exit_with, t * 10 + i));
        std::lock_guard lock{m};
        pids.push_back(ps.back().pid());
      }
      started.arrive_and_wait();
      for (int i = 0; i < each; ++i)
        if (ps[static_cast<std::size_t>(i)].join(20s) && ps[static_cast<std::size_t>(i)].exitcode() == t * 10 + i) ++right;
    });
  go.count_down();
  for (auto& t : ts) t.join();
  EXPECT_EQ(right, threads * each);
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(std::adjacent_find(pids.begin(), pids.end()), pids.end()) << "two processes with one pid";
}

INSTANTIATE_TEST_SUITE_P(method, method_param, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(fork_server_death, children_end_and_joins_return) {
  mproc::node node;
  mproc::test::guard watchdog;
  mproc::process p{node, sleep_long};
  p.start();
  watchdog.add(p);
  pid_t fs = node.forkserver_pid();
  ASSERT_GT(fs, 0);
  ASSERT_EQ(::kill(fs, SIGKILL), 0);
  // Its children die with it (PDEATHSIG); the node must notice instead of hanging.
  ASSERT_TRUE(p.join(10s)) << "join hung after the fork server died";
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  EXPECT_TRUE(mproc::test::gone_within(mproc::test::ref_of(p.pid()), 1000ms));
  // Other methods keep working.
  EXPECT_EQ(run_with(node, watchdog, start_method::spawn, exit_with_marker), 0);
}

TEST(fork_server_death, later_starts_fail_with_node_closed) {
  mproc::node node;
  mproc::test::guard watchdog;
  pid_t fs = node.forkserver_pid();
  ASSERT_GT(fs, 0);
  auto server = mproc::test::ref_of(fs);
  ASSERT_EQ(::kill(fs, SIGKILL), 0);
  ASSERT_TRUE(mproc::test::gone_within(server, 2000ms));
  mproc::process p{node, exit_with, 0};
  std::error_code ec;
  p.start(ec);
  if (!ec) watchdog.add(p);
  // Regression: this used to be the socket's EPIPE (a system_category error), not node_closed,
  // which the header documents for "the node is shutting down or its fork server is gone".
  EXPECT_EQ(ec, mproc::errc::node_closed) << ec.category().name() << ":" << ec.value() << " " << ec.message();
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.pid(), 0);
  // The other methods still work.
  mproc::process q{node, exit_with, 5};
  q.set_start_method(start_method::spawn);
  q.start();
  watchdog.add(q);
  ASSERT_TRUE(q.join(20s));
  EXPECT_EQ(q.exitcode(), 5);
}

TEST(fork_server_death, the_dead_server_is_reaped) {
  mproc::node node;
  mproc::test::guard watchdog;
  pid_t fs = node.forkserver_pid();
  ASSERT_GT(fs, 0);
  auto server = mproc::test::ref_of(fs);
  ASSERT_EQ(::kill(fs, SIGKILL), 0);
  // Regression: it used to stay a zombie child of the node's process until the node was
  // destroyed (only shutdown waited for it), contrary to "leaves no zombies".
  bool reaped = mproc::test::eventually(
      [&] {
        auto st = mproc::test::read_stat(fs);
        return !st || st->starttime != server.starttime;  // gone (or the pid is someone else's now)
      },
      2000ms);
  EXPECT_TRUE(reaped) << "the dead fork server is still a zombie of the node";
  EXPECT_TRUE(mproc::test::zombie_children(::getpid()).empty());
}

}  // namespace

namespace {

void report_through(mproc::queue_reader<int> in, mproc::queue<int> out) { out.put(in.get(10s)); }
MPROC_ENTRY(report_through);

// Regression: the fork gate reset its "release" flag when the next fork began, so an I/O thread
// still parked for the previous fork stayed parked, and a child opening a queue waited for it:
// each back-to-back fork start stalled for the gate's 1 s bound.
TEST(start_methods, back_to_back_fork_starts_with_queue_arguments_do_not_stall) {
  mproc::node node{mproc::test::with_method(mproc::start_method::fork)};
  mproc::test::guard watchdog{30s};
  auto in = node.make_queue<int>();
  auto out = node.make_queue<int>();
  std::vector<mproc::process> ps;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    ps.push_back(node.spawn(report_through, in.reader(), out));
    watchdog.add(ps.back());
  }
  auto took = std::chrono::steady_clock::now() - t0;
  for (int i = 0; i < 4; ++i) in.put(i);
  for (int i = 0; i < 4; ++i) out.get(10s);
  for (auto& p : ps) p.join();
  EXPECT_LT(took, 900ms) << "four fork starts: each waited for the fork gate's timeout";
}

}  // namespace
