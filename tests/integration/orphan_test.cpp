// No orphans: a node that is SIGKILLed takes every descendant along (children, their fork
// servers, grandchildren, daemons), under every start method, and the runtime directory it left
// behind is reclaimed by the next node. A SIGKILLed child that is a node itself does the same
// for its own children.
//
// The node under test must be a process of its own (orphan_helper.cpp); its descendants are found
// both from what it announces and from /proc, and are pinned by pidfd (mproc::test::guard) so a
// failed test never leaves one behind and never kills a recycled pid.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;
using mproc::test::proc_ref;
namespace fs = std::filesystem;

namespace {

void sleep_long() { std::this_thread::sleep_for(60s); }

/// Spawns a grandchild and a daemon grandchild, reports "<grandchild> <daemon> <fork server>"
/// in `file` (written whole, then renamed), and joins.
void parent_of_sleepers(std::string file) {
  auto& node = mproc::node::current();
  auto g = node.spawn(sleep_long);
  mproc::process d{node, sleep_long};
  d.set_daemon(true);
  d.start();
  std::ofstream{file + ".tmp"} << g.pid() << ' ' << d.pid() << ' ' << node.forkserver_pid() << std::endl;
  fs::rename(file + ".tmp", file);
  g.join();
}

}  // namespace

MPROC_ENTRY(sleep_long);
MPROC_ENTRY(parent_of_sleepers);

namespace {

bool contains(const std::vector<pid_t>& v, pid_t p) { return std::find(v.begin(), v.end(), p) != v.end(); }

std::string method_of(const testing::TestParamInfo<start_method>& info) { return mproc::test::method_name(info); }

class orphans : public testing::TestWithParam<start_method> {};

TEST_P(orphans, sigkilled_node_takes_every_descendant_along) {
  mproc::test::guard watchdog{30s};
  mproc::test::temp_dir tmp;
  auto root = tmp / "root";
  bool forkserver = GetParam() == start_method::forkserver;
  std::set<std::string> expected{"node", "runtime-dir", "child", "grandchild", "daemon-grandchild"};
  if (forkserver) expected.insert({"forkserver", "child-forkserver"});

  mproc::test::subprocess helper{{MPROC_ORPHAN_HELPER, std::string{mproc::to_string(GetParam())}, root.string()}};
  watchdog.add(helper.pid());
  auto said = mproc::test::read_announcements(helper, expected, 20s);
  for (pid_t p : said.pids()) watchdog.add(p);
  for (const auto& what : expected) ASSERT_TRUE(said.get(what)) << "never announced: " << what << "\n" << said.show();
  ASSERT_EQ(said.pid("node"), helper.pid());

  // The whole tree, from /proc: everything the helper announced, and nothing it did not.
  auto tree = mproc::test::descendants_of(helper.pid());
  for (pid_t p : tree) watchdog.add(p);
  for (const auto& [what, value] : said.lines) {
    if (what == "node" || what == "runtime-dir") continue;
    EXPECT_TRUE(contains(tree, said.pid(what))) << what << " " << value << " is not below the node";
  }
  EXPECT_EQ(tree.size(), expected.size() - 2) << "descendants: " << testing::PrintToString(tree) << "\nannounced:\n"
                                              << said.show();
  if (forkserver) {
    // The child is forked by the node's fork server, the grandchildren by the child's.
    auto child = mproc::test::read_stat(said.pid("child"));
    ASSERT_TRUE(child);
    EXPECT_EQ(child->ppid, said.pid("forkserver"));
    auto grandchild = mproc::test::read_stat(said.pid("grandchild"));
    ASSERT_TRUE(grandchild);
    EXPECT_EQ(grandchild->ppid, said.pid("child-forkserver"));
  }
  std::vector<proc_ref> refs;
  for (pid_t p : tree) {
    refs.push_back(mproc::test::ref_of(p));
    EXPECT_TRUE(mproc::test::running(refs.back())) << p;
  }
  fs::path runtime_dir = *said.get("runtime-dir");
  EXPECT_EQ(runtime_dir.parent_path(), root);
  EXPECT_TRUE(fs::is_directory(runtime_dir));

  ASSERT_EQ(::kill(helper.pid(), SIGKILL), 0);
  auto status = helper.wait(5000ms);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  // Reparented away from us now; /proc still tells whether they exist.
  for (const auto& r : refs)
    EXPECT_TRUE(mproc::test::gone_within(r, 2000ms)) << "pid " << r.pid << " outlived its SIGKILLed node by 2 s";

  // A SIGKILLed node cannot clean up: its runtime directory stays until the next node.
  EXPECT_TRUE(fs::exists(runtime_dir)) << "removed by whom?";
  {
    mproc::node next{mproc::test::with_root(root)};
    EXPECT_FALSE(fs::exists(runtime_dir)) << "the next node did not reclaim the dead node's runtime directory";
  }
}

INSTANTIATE_TEST_SUITE_P(method, orphans, mproc::test::all_start_methods(), method_of);

/// A child is a node too: SIGKILL it, and its children (and its fork server) go with it, while
/// the node above it learns of the death like of any other.
class child_orphans : public mproc::test::method_test {};

TEST_P(child_orphans, sigkilled_child_takes_its_children_along) {
  mproc::test::temp_dir tmp;
  auto file = tmp / "pids";
  auto p = start(parent_of_sleepers, file.string());
  ASSERT_TRUE(mproc::test::eventually([&] { return fs::exists(file); }, 20000ms)) << "the child never reported";
  pid_t grandchild = 0, daemon = 0, server = 0;
  std::istringstream{mproc::test::read_file(file)} >> grandchild >> daemon >> server;
  ASSERT_GT(grandchild, 0);
  ASSERT_GT(daemon, 0);
  watchdog.add(grandchild);
  watchdog.add(daemon);
  std::vector<proc_ref> below{mproc::test::ref_of(grandchild), mproc::test::ref_of(daemon)};
  if (server > 0) {
    watchdog.add(server);
    below.push_back(mproc::test::ref_of(server));
  }
  EXPECT_EQ(server > 0, GetParam() == start_method::forkserver) << "the child's node uses the parent's method";
  for (const auto& r : below) ASSERT_TRUE(mproc::test::running(r)) << r.pid;

  p.kill();
  EXPECT_EQ(finish(p), -SIGKILL);
  for (const auto& r : below) EXPECT_TRUE(mproc::test::gone_within(r, 2000ms)) << "pid " << r.pid << " outlived its parent";
  // And the node here is clean: nothing of it left running, nobody a zombie.
  EXPECT_TRUE(mproc::test::eventually([&] { return node.active_children().empty(); }));
  EXPECT_TRUE(mproc::test::eventually([&] {
    pid_t fs = node.forkserver_pid();
    return mproc::test::zombie_children(::getpid()).empty() &&
           (fs == 0 || mproc::test::zombie_children(fs).empty());
  }));
}

INSTANTIATE_TEST_SUITE_P(method, child_orphans, mproc::test::all_start_methods(), mproc::test::method_name);

}  // namespace
