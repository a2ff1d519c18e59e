// Lifetimes: daemon children are terminated at node shutdown, others are joined; dropping a
// handle does not kill; active_children(); nobody is left a zombie, before or after shutdown.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;
using mproc::test::proc_ref;
using mproc::test::read_file;
using mproc::test::ref_of;

namespace {

void nap(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void sleep_long() { std::this_thread::sleep_for(60s); }
void ignore_sigterm_and_sleep() {
  ::signal(SIGTERM, SIG_IGN);
  std::this_thread::sleep_for(60s);
}
/// Starts a daemon grandchild that would sleep for a minute and a non-daemon one that naps,
/// reports their pids, and returns: the child's own node must end the one and wait for the other.
void leave_grandchildren_behind(std::string file) {
  auto& node = mproc::node::current();
  mproc::process d{node, sleep_long};
  d.set_daemon(true);
  d.start();
  auto n = node.spawn(nap, 300);
  std::ofstream{file} << d.pid() << ' ' << n.pid() << std::endl;
}

}  // namespace

MPROC_ENTRY(nap);
MPROC_ENTRY(sleep_long);
MPROC_ENTRY(ignore_sigterm_and_sleep);
MPROC_ENTRY(leave_grandchildren_behind);

namespace {

bool contains(const std::vector<pid_t>& v, pid_t p) { return std::find(v.begin(), v.end(), p) != v.end(); }

bool ignores_sigterm(pid_t pid) {
  auto status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("SigIgn:");
  return at != std::string::npos && (std::stoull(status.substr(at + 7), nullptr, 16) & (1ull << (SIGTERM - 1))) != 0;
}

class lifetimes : public testing::TestWithParam<start_method> {};

TEST_P(lifetimes, daemon_terminated_and_others_joined_at_node_destruction) {
  mproc::test::guard watchdog;  // outlives the node here: the node's destructor is under test
  std::optional<mproc::process> daemon, worker;
  proc_ref daemon_ref, worker_ref;
  proc_ref server;
  auto t0 = mproc::test::steady::now();
  {
    mproc::node node{mproc::test::with_method(GetParam())};
    if (node.forkserver_pid() > 0) server = ref_of(node.forkserver_pid());
    daemon.emplace(node, sleep_long);
    daemon->set_daemon(true);
    EXPECT_TRUE(daemon->daemon());
    daemon->start();
    watchdog.add(*daemon);
    worker.emplace(node, nap, 300);
    EXPECT_FALSE(worker->daemon());
    worker->start();
    watchdog.add(*worker);
    daemon_ref = ref_of(daemon->pid());
    worker_ref = ref_of(worker->pid());
    t0 = mproc::test::steady::now();
  }  // ~node: terminates the daemon, joins the worker
  auto took = mproc::test::steady::now() - t0;
  EXPECT_GE(took, 250ms) << "the node's destructor did not wait for the non-daemon child";
  EXPECT_LT(took, 10s);
  EXPECT_EQ(daemon->exitcode(), -SIGTERM);
  EXPECT_EQ(worker->exitcode(), 0);
  EXPECT_FALSE(daemon->is_alive());
  EXPECT_FALSE(mproc::test::running(daemon_ref));
  EXPECT_FALSE(mproc::test::running(worker_ref));
  // Reaped, not zombies; the fork server too.
  EXPECT_TRUE(mproc::test::children_of(::getpid()).empty());
  if (server.pid > 0) {
    auto st = mproc::test::read_stat(server.pid);
    EXPECT_TRUE(!st || st->starttime != server.starttime) << "the fork server is still there (a zombie?)";
  }
}

TEST_P(lifetimes, daemon_ignoring_sigterm_is_killed_after_the_grace_period) {
  mproc::test::guard watchdog;
  std::optional<mproc::process> daemon;
  auto t0 = mproc::test::steady::now();
  {
    auto opts = mproc::test::with_method(GetParam());
    opts.kill_grace = 300ms;
    mproc::node node{opts};
    daemon.emplace(node, ignore_sigterm_and_sleep);
    daemon->set_daemon(true);
    daemon->start();
    watchdog.add(*daemon);
    ASSERT_TRUE(mproc::test::eventually([&] { return ignores_sigterm(daemon->pid()); }));
    t0 = mproc::test::steady::now();
  }
  auto took = mproc::test::steady::now() - t0;
  EXPECT_EQ(daemon->exitcode(), -SIGKILL);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 10s);
}

TEST_P(lifetimes, dropping_a_handle_does_not_kill_and_the_node_joins_it) {
  mproc::test::guard watchdog;
  proc_ref child;
  auto t0 = mproc::test::steady::now();
  {
    mproc::node node{mproc::test::with_method(GetParam())};
    {
      auto p = node.spawn(nap, 400);
      watchdog.add(p);
      child = ref_of(p.pid());
    }  // handle gone
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(mproc::test::running(child)) << "destroying the handle killed the child";
    EXPECT_TRUE(contains(node.active_children(), child.pid));
    t0 = mproc::test::steady::now();
  }  // ~node joins it
  EXPECT_GE(mproc::test::steady::now() - t0, 200ms) << "the node did not wait for the handle-less child";
  EXPECT_FALSE(mproc::test::running(child));
  EXPECT_TRUE(mproc::test::children_of(::getpid()).empty());
}

TEST_P(lifetimes, dropped_daemon_handle_is_still_terminated_at_shutdown) {
  mproc::test::guard watchdog;
  proc_ref child;
  auto t0 = mproc::test::steady::now();
  {
    mproc::node node{mproc::test::with_method(GetParam())};
    {
      mproc::process p{node, sleep_long};
      p.set_daemon(true);
      p.start();
      watchdog.add(p);
      child = ref_of(p.pid());
    }
    EXPECT_TRUE(mproc::test::running(child));
    t0 = mproc::test::steady::now();
  }
  EXPECT_LT(mproc::test::steady::now() - t0, 10s);
  EXPECT_FALSE(mproc::test::running(child));
}

TEST_P(lifetimes, active_children_lists_running_children_only) {
  mproc::node node{mproc::test::with_method(GetParam())};
  mproc::test::guard watchdog;
  EXPECT_TRUE(node.active_children().empty());
  auto a = node.spawn(sleep_long);
  watchdog.add(a);
  auto b = node.spawn(nap, 0);
  watchdog.add(b);
  pid_t dropped = 0;
  {
    auto c = node.spawn(sleep_long);
    watchdog.add(c);
    dropped = c.pid();
  }
  ASSERT_TRUE(b.join(20s));
  auto kids = node.active_children();
  EXPECT_TRUE(contains(kids, a.pid()));
  EXPECT_TRUE(contains(kids, dropped)) << "a child without a handle is still active";
  EXPECT_FALSE(contains(kids, b.pid())) << "an exited child is not active";
  EXPECT_FALSE(contains(kids, node.forkserver_pid())) << "the fork server is not a child process of the user's";
  a.kill();
  ASSERT_TRUE(a.join(20s));
  EXPECT_FALSE(contains(node.active_children(), a.pid()));
  ::kill(dropped, SIGKILL);
  EXPECT_TRUE(mproc::test::eventually([&] { return node.active_children().empty(); }));
}

TEST_P(lifetimes, no_zombies_after_joins) {
  mproc::node node{mproc::test::with_method(GetParam())};
  mproc::test::guard watchdog;
  std::vector<mproc::process> ps;
  for (int i = 0; i < 5; ++i) ps.push_back(node.spawn(nap, i));
  ps.push_back(node.spawn(sleep_long));
  ps.back().terminate();
  ps.push_back(node.spawn(sleep_long));
  ps.back().kill();
  { auto dropped = node.spawn(nap, 0); }  // exits on its own, nobody joins it
  std::vector<pid_t> pids;
  for (auto& p : ps) {
    watchdog.add(p);
    pids.push_back(p.pid());
    ASSERT_TRUE(p.join(20s));
  }
  pid_t self = ::getpid(), server = node.forkserver_pid();
  bool clean = mproc::test::eventually([&] {
    if (!mproc::test::zombie_children(self).empty()) return false;
    if (server > 0 && !mproc::test::zombie_children(server).empty()) return false;
    if (!node.active_children().empty()) return false;
    for (pid_t p : mproc::test::task_children(self))
      if (p != server) return false;  // /proc/<node>/task/*/children lists nothing but the server
    return server == 0 || mproc::test::task_children(server).empty();
  });
  EXPECT_TRUE(clean) << "zombies of the node: " << testing::PrintToString(mproc::test::zombie_children(self))
                     << ", of the fork server: "
                     << testing::PrintToString(server > 0 ? mproc::test::zombie_children(server) : std::vector<pid_t>{})
                     << ", children of the node: " << testing::PrintToString(mproc::test::task_children(self));
}

TEST_P(lifetimes, a_childs_node_ends_its_daemons_and_waits_for_the_rest) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());  // the child runs a node of its own
  mproc::node node{mproc::test::with_method(GetParam())};
  mproc::test::guard watchdog;
  mproc::test::temp_dir dir;
  auto file = (dir / "pids").string();
  auto t0 = mproc::test::steady::now();
  auto p = node.spawn(leave_grandchildren_behind, file);
  watchdog.add(p);
  ASSERT_TRUE(p.join(20s)) << "the child's exit hung on its daemon grandchild";
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_GE(mproc::test::steady::now() - t0, 250ms) << "the child did not wait for its non-daemon child";
  pid_t daemon = 0, napper = 0;
  std::istringstream{read_file(file)} >> daemon >> napper;
  ASSERT_GT(daemon, 0);
  ASSERT_GT(napper, 0);
  EXPECT_TRUE(mproc::test::gone_within({daemon, 0}, 1000ms)) << "the daemon grandchild outlived its parent";
  EXPECT_TRUE(mproc::test::gone_within({napper, 0}, 1000ms));
}

INSTANTIATE_TEST_SUITE_P(method, lifetimes, mproc::test::all_start_methods(), mproc::test::method_name);

}  // namespace
