// Killing or interrupting a node's process from outside: no orphans, prompt Ctrl-C.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;

extern char** environ;

namespace {

/// Runs node_helper with stdout on a pipe; collects the pids it announces.
struct helper {
  pid_t pid = 0;
  FILE* out = nullptr;
  std::vector<pid_t> pids;  // every process it reported, helper included
  mproc::test::kill_on_exit cleanup;

  /// Reads the helper's announcements until every word in `until` has been seen (lines from
  /// several processes arrive in any order).
  helper(const std::vector<std::string>& args, std::set<std::string> until) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    std::vector<std::string> argv_s{MPROC_NODE_HELPER};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(::posix_spawn(&pid, MPROC_NODE_HELPER, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    cleanup.add(pid);
    out = ::fdopen(fds[0], "r");
    char line[256];
    while (!until.empty() && std::fgets(line, sizeof line, out) != nullptr) {
      std::istringstream in{line};
      std::string what;
      pid_t p = 0;
      in >> what >> p;
      if (p > 0) {
        pids.push_back(p);
        cleanup.add(p);
      }
      until.erase(what);
    }
  }
  ~helper() {
    if (out) std::fclose(out);
    if (pid > 0) ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  }
  std::string rest() {
    std::string all;
    char line[256];
    while (std::fgets(line, sizeof line, out) != nullptr) all += line;
    return all;
  }
  /// Waits up to `limit` for the helper to exit; returns its wait status or -1.
  int wait_exit(std::chrono::milliseconds limit) {
    int status = -1;
    bool done = mproc::test::eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, limit);
    if (done) pid = 0;
    return done ? status : -1;
  }
};

class orphans : public testing::TestWithParam<std::string> {};

TEST_P(orphans, sigkilled_node_takes_every_descendant_along) {
  helper h{{"orphans", GetParam()}, {"child", "grandchild"}};
  ASSERT_GE(h.pids.size(), 3u);  // node, child, grandchild (+ fork servers)
  for (pid_t p : h.pids) ASSERT_TRUE(mproc::test::pid_running(p)) << p;
  ::kill(h.pid, SIGKILL);
  ASSERT_NE(h.wait_exit(1000ms), -1);
  // Descendants were reparented away from us; /proc tells whether they still exist.
  for (pid_t p : h.pids) {
    EXPECT_TRUE(mproc::test::eventually([&] { return !mproc::test::pid_running(p); }, 1000ms))
        << "pid " << p << " outlived its SIGKILLed node by more than 1 s";
  }
}

INSTANTIATE_TEST_SUITE_P(all_methods, orphans, testing::Values("forkserver", "spawn", "fork"));

TEST(sigint, blocked_join_is_interrupted_and_children_reaped) {
  helper h{{"sigint-join"}, {"ready"}};
  ASSERT_GE(h.pids.size(), 3u);
  std::this_thread::sleep_for(100ms);  // let it block in join()
  ::kill(h.pid, SIGINT);
  int status = h.wait_exit(5000ms);
  ASSERT_NE(status, -1) << "the node did not exit promptly after SIGINT";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_NE(h.rest().find("interrupted"), std::string::npos);
  for (pid_t p : h.pids) EXPECT_TRUE(mproc::test::eventually([&] { return !mproc::test::pid_running(p); }, 1000ms)) << p;
}

TEST(sigint, busy_program_dies_of_sigint_after_reaping) {
  helper h{{"sigint-busy"}, {"ready"}};
  ASSERT_GE(h.pids.size(), 3u);
  ::kill(h.pid, SIGINT);
  int status = h.wait_exit(5000ms);
  ASSERT_NE(status, -1) << "the node did not exit promptly after SIGINT";
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  for (pid_t p : h.pids) EXPECT_TRUE(mproc::test::eventually([&] { return !mproc::test::pid_running(p); }, 1000ms)) << p;
}

}  // namespace
