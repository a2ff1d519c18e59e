// Ctrl-C (SIGINT), under every start method: children are terminated (SIGKILLed after
// kill_grace when they ignore SIGTERM) and reaped; a call blocked at that moment throws
// errc::interrupted; when none was blocked the program dies of SIGINT, after reaping, as usual;
// with handle_sigint = false SIGINT simply kills the node, and its children die with it.
//
// The node must be a process of its own (sigint_helper.cpp): SIGINT goes to it, or to its whole
// process group as a terminal's Ctrl-C does.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;
using mproc::test::proc_ref;
namespace fs = std::filesystem;

namespace {

/// One run of sigint_helper: started, its announcements read up to "ready" (and the stubborn
/// child's "stubborn-ready"), everything it started pinned by the guard.
class sigint : public testing::TestWithParam<start_method> {
 protected:
  mproc::test::guard watchdog{30s};
  mproc::test::temp_dir tmp;
  std::optional<mproc::test::subprocess> helper;
  mproc::test::announcements said;
  std::vector<proc_ref> children;
  fs::path runtime_dir;

  void launch(const std::string& mode, bool own_process_group = false) {
    helper.emplace(std::vector<std::string>{MPROC_SIGINT_HELPER, mode, std::string{mproc::to_string(GetParam())},
                                            (tmp / "root").string()},
                   mproc::test::subprocess::options{own_process_group});
    watchdog.add(helper->pid());
    std::set<std::string> expected{"node", "runtime-dir", "sleeper", "stubborn", "stubborn-ready", "ready"};
    said = mproc::test::read_announcements(*helper, expected, 20s);
    for (pid_t p : said.pids()) watchdog.add(p);
    for (const auto& what : expected) ASSERT_TRUE(said.get(what)) << "never announced: " << what << "\n" << said.show();
    ASSERT_EQ(said.pid("node"), helper->pid());
    // Every descendant (children and any fork server): pinned, and each must be gone in the end.
    for (pid_t p : mproc::test::descendants_of(helper->pid())) {
      watchdog.add(p);
      children.push_back(mproc::test::ref_of(p));
    }
    ASSERT_GE(children.size(), 2u);
    for (const auto& r : children) ASSERT_TRUE(mproc::test::running(r)) << r.pid;
    runtime_dir = *said.get("runtime-dir");
    ASSERT_TRUE(fs::is_directory(runtime_dir));
  }

  /// Waits (bounded) until the helper's main thread is blocked in a wait, not merely on its way.
  void await_blocked_main_thread() {
    ASSERT_TRUE(mproc::test::main_thread_blocks(helper->pid())) << "the helper never blocked in join()";
  }

  static std::string listing(const fs::path& dir) {
    std::string out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      out += it->path().string() + "\n";
    return out;
  }

  /// The helper's wait status, at most 10 s after the signal (kill_grace is 300 ms).
  int exit_status() {
    auto status = helper->wait(10000ms);
    EXPECT_TRUE(status) << "the node did not exit promptly after SIGINT";
    return status.value_or(-1);
  }

  void expect_children_gone() {
    for (const auto& r : children)
      EXPECT_TRUE(mproc::test::gone_within(r, 2000ms)) << "pid " << r.pid << " outlived the interrupted node";
  }

  /// SIGINT to a helper that is inside no call of its own that Ctrl-C interrupts (busy, or, with
  /// `blocked_first`, blocked in a wait of mproc's own): it must die of SIGINT, after reaping.
  void expect_death_by_sigint(const std::string& mode, bool blocked_first = false) {
    ASSERT_NO_FATAL_FAILURE(launch(mode));
    if (blocked_first) {
      ASSERT_NO_FATAL_FAILURE(await_blocked_main_thread());
    }
    ASSERT_EQ(::kill(helper->pid(), SIGINT), 0);
    int status = exit_status();
    ASSERT_TRUE(WIFSIGNALED(status)) << "wait status " << status << "; output:\n" << helper->read_rest(2000ms);
    EXPECT_EQ(WTERMSIG(status), SIGINT);
    expect_children_gone();
    EXPECT_FALSE(fs::exists(runtime_dir)) << "removed before the node re-raised SIGINT; left: " << listing(runtime_dir);
  }

  /// After the SIGINT: the helper's blocked call reported errc::interrupted and the helper
  /// returned 3. Returns what it printed meanwhile.
  std::string expect_interrupted_call() {
    int status = exit_status();
    auto rest = helper->read_rest(2000ms);
    EXPECT_TRUE(WIFEXITED(status)) << "wait status " << status << "; output:\n" << rest;
    EXPECT_EQ(WEXITSTATUS(status), 3) << rest;
    EXPECT_NE(rest.find("interrupted"), std::string::npos) << rest;
    return rest;
  }

  /// SIGINT to a helper blocked in a call on its pool: that call throws errc::interrupted.
  void expect_interrupted_pool_call(const std::string& mode) {
    ASSERT_NO_FATAL_FAILURE(launch(mode));
    ASSERT_NO_FATAL_FAILURE(await_blocked_main_thread());
    ASSERT_EQ(::kill(helper->pid(), SIGINT), 0);
    expect_interrupted_call();
    expect_children_gone();
    EXPECT_FALSE(fs::exists(runtime_dir)) << "the node's destructor did not run";
  }
};

TEST_P(sigint, blocked_join_is_interrupted_and_children_reaped) {
  ASSERT_NO_FATAL_FAILURE(launch("join"));
  ASSERT_NO_FATAL_FAILURE(await_blocked_main_thread());
  ASSERT_EQ(::kill(helper->pid(), SIGINT), 0);
  auto rest = expect_interrupted_call();
  // Terminated by the node: SIGTERM, and SIGKILL for the one that ignores it.
  EXPECT_NE(rest.find("exitcode-sleeper " + std::to_string(-SIGTERM) + "\n"), std::string::npos) << rest;
  EXPECT_NE(rest.find("exitcode-stubborn " + std::to_string(-SIGKILL) + "\n"), std::string::npos) << rest;
  expect_children_gone();
  EXPECT_FALSE(fs::exists(runtime_dir)) << "the node's destructor did not run";
}

TEST_P(sigint, blocked_timed_join_is_interrupted_too) {
  ASSERT_NO_FATAL_FAILURE(launch("timed-join"));
  ASSERT_NO_FATAL_FAILURE(await_blocked_main_thread());
  auto t0 = mproc::test::steady::now();
  ASSERT_EQ(::kill(helper->pid(), SIGINT), 0);
  expect_interrupted_call();
  EXPECT_LT(mproc::test::steady::now() - t0, 10s) << "the 60 s join ran out instead";
  expect_children_gone();
}

TEST_P(sigint, ctrl_c_to_the_process_group_children_die_of_it) {
  // A terminal sends Ctrl-C to the whole foreground group: the children get it too and die of
  // it themselves (as Python's do), the fork server ignores it, the node's join is interrupted.
  ASSERT_NO_FATAL_FAILURE(launch("join", /*own_process_group=*/true));
  ASSERT_EQ(mproc::test::read_stat(helper->pid())->pgrp, helper->pid());
  ASSERT_NO_FATAL_FAILURE(await_blocked_main_thread());
  ASSERT_EQ(::kill(-helper->pid(), SIGINT), 0);
  auto rest = expect_interrupted_call();
  EXPECT_NE(rest.find("exitcode-sleeper " + std::to_string(-SIGINT) + "\n"), std::string::npos) << rest;
  EXPECT_NE(rest.find("exitcode-stubborn " + std::to_string(-SIGINT) + "\n"), std::string::npos) << rest;
  expect_children_gone();
}

TEST_P(sigint, busy_program_dies_of_sigint_after_reaping) { expect_death_by_sigint("busy"); }

TEST_P(sigint, busy_program_with_a_pool_dies_of_sigint_after_reaping) {
  // The pool's manager thread waits on its workers inside mproc (it joins each one that dies):
  // those waits are mproc's own, not the program's, so nobody is there to take the interrupt.
  expect_death_by_sigint("pool-busy");
}

TEST_P(sigint, a_program_stopping_an_actor_host_dies_of_sigint) {
  // actor_host::stop (and its destructor) waits for the host's end inside mproc: a wait of its
  // own, which must not take the interrupt (before, the program ran on after Ctrl-C).
  expect_death_by_sigint("host-stop", true);
}

TEST_P(sigint, a_pool_get_is_interrupted) { expect_interrupted_pool_call("pool-get"); }
TEST_P(sigint, a_pool_imap_is_interrupted) { expect_interrupted_pool_call("pool-imap"); }
TEST_P(sigint, a_pool_join_is_interrupted) { expect_interrupted_pool_call("pool-join"); }

TEST_P(sigint, interrupts_the_node_destructor_joining_children) {
  // The destructor joins non-daemon children without a time limit; Ctrl-C ends that wait and,
  // with nobody to throw at, the program dies of SIGINT once they are reaped.
  expect_death_by_sigint("shutdown", true);
}

TEST_P(sigint, unhandled_sigint_kills_the_node_and_its_children_die_with_it) {
  ASSERT_NO_FATAL_FAILURE(launch("unhandled"));
  ASSERT_EQ(::kill(helper->pid(), SIGINT), 0);
  int status = exit_status();
  ASSERT_TRUE(WIFSIGNALED(status)) << "wait status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  expect_children_gone();  // PR_SET_PDEATHSIG, also for the one that ignores SIGTERM
}

INSTANTIATE_TEST_SUITE_P(method, sigint, mproc::test::all_start_methods(), mproc::test::method_name);

}  // namespace
