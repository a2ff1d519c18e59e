// Descriptor hygiene: children started by forkserver or spawn hold only 0, 1, 2 and their channel
// to the node, whatever the parent had open (with or without O_CLOEXEC); the fork server holds
// nothing of the user's; every descriptor the node itself opens is O_CLOEXEC.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::start_method;
namespace fs = std::filesystem;

namespace {

using fd_list = std::vector<std::pair<int, std::string>>;

/// Writes the child's open descriptors ("fd target" lines) to `file`.
void list_fds(std::string file) {
  auto fds = mproc::test::open_fds();  // listed before the report file is opened
  std::ofstream out{file};
  for (const auto& [fd, target] : fds) out << fd << ' ' << target << '\n';
}

/// The same, one generation further down (same start method as the child's node default).
void list_grandchild_fds(std::string file) {
  auto p = mproc::node::current().spawn(list_fds, file);
  p.join();
  std::exit(*p.exitcode());
}

void sleep_long() { std::this_thread::sleep_for(60s); }

}  // namespace

MPROC_ENTRY(list_fds);
MPROC_ENTRY(list_grandchild_fds);
MPROC_ENTRY(sleep_long);

namespace {

fd_list parse(const std::string& text) {
  fd_list out;
  std::istringstream in{text};
  int fd;
  std::string target;
  while (in >> fd && std::getline(in >> std::ws, target)) out.emplace_back(fd, target);
  return out;
}

std::string show(const fd_list& fds) {
  std::string s;
  for (const auto& [fd, target] : fds) s += "  " + std::to_string(fd) + " -> " + target + "\n";
  return s;
}

/// 0, 1, 2 and at most one more, a socket (the channel to the node); nothing in `forbidden`.
void expect_clean(const fd_list& fds, const std::set<std::string>& forbidden, const std::string& who) {
  int extra = 0;
  for (const auto& [fd, target] : fds) {
    EXPECT_EQ(forbidden.count(target), 0u) << who << " inherited " << target << "\n" << show(fds);
    if (fd <= 2) continue;
    ++extra;
    EXPECT_EQ(target.rfind("socket:", 0), 0u) << who << ": fd " << fd << " is not the channel\n" << show(fds);
  }
  EXPECT_LE(extra, 1) << who << " has more than its channel open:\n" << show(fds);
}

/// Opens a file of ours *without* O_CLOEXEC, the way careless code (or an old library) does.
int open_leaky(const fs::path& p) {
  std::ofstream{p} << "private";
  return ::open(p.c_str(), O_RDONLY);  // NOLINT: deliberately no O_CLOEXEC
}

class fd_leaks : public testing::TestWithParam<start_method> {};

TEST_P(fd_leaks, children_see_only_stdio_and_their_channel) {
  mproc::test::temp_dir dir;
  // Opened before the node: the fork server (forked in the node's constructor) gets copies.
  int before = open_leaky(dir / "before-node");
  ASSERT_GE(before, 0);
  int pair_before[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair_before), 0);  // a socket, not CLOEXEC either
  std::set<std::string> forbidden{(dir / "before-node").string(), (dir / "after-node").string()};
  {
    mproc::node node{mproc::test::with_method(GetParam())};
    mproc::test::guard watchdog;
    // Opened after the node, before the spawn.
    int after = open_leaky(dir / "after-node");
    ASSERT_GE(after, 0);
    int pipe_after[2];
    ASSERT_EQ(::pipe(pipe_after), 0);  // NOLINT: deliberately no O_CLOEXEC
    for (int fd : {pair_before[0], pair_before[1], pipe_after[0], pipe_after[1]}) {
      char target[128];
      ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target);
      if (n > 0) forbidden.insert(std::string(target, static_cast<std::size_t>(n)));
    }

    auto child_file = (dir / "child").string();
    auto p = node.spawn(list_fds, child_file);
    watchdog.add(p);
    ASSERT_TRUE(p.join(20s));
    ASSERT_EQ(p.exitcode(), 0);
    expect_clean(parse(mproc::test::read_file(child_file)), forbidden, "the child");

    auto grandchild_file = (dir / "grandchild").string();
    auto q = node.spawn(list_grandchild_fds, grandchild_file);
    watchdog.add(q);
    ASSERT_TRUE(q.join(20s));
    ASSERT_EQ(q.exitcode(), 0);
    expect_clean(parse(mproc::test::read_file(grandchild_file)), forbidden, "the grandchild");

    ::close(after);
    ::close(pipe_after[0]);
    ::close(pipe_after[1]);
  }
  ::close(before);
  ::close(pair_before[0]);
  ::close(pair_before[1]);
}

INSTANTIATE_TEST_SUITE_P(method, fd_leaks, testing::Values(start_method::forkserver, start_method::spawn),
                         mproc::test::method_name);

TEST(fd_leaks, fork_server_holds_nothing_of_the_users) {
  mproc::test::temp_dir dir;
  int before = open_leaky(dir / "before-node");
  ASSERT_GE(before, 0);
  {
    mproc::node node;
    mproc::test::guard watchdog;
    pid_t fs = node.forkserver_pid();
    ASSERT_GT(fs, 0);
    auto p = node.spawn(sleep_long);  // the server is surely past its start-up now
    watchdog.add(p);
    // The server sends the child's pidfd with its reply and closes its own copy right after, so
    // the reply may arrive while it still holds it: look once it is idle again.
    fd_list fds;
    mproc::test::eventually(
        [&] {
          fds = mproc::test::open_fds_of(fs);
          for (const auto& [fd, target] : fds)
            if (target == "anon_inode:[pidfd]") return false;
          return true;
        },
        2000ms);
    int sockets = 0, others = 0;
    for (const auto& [fd, target] : fds) {
      EXPECT_NE(target, (dir / "before-node").string()) << "the fork server kept the user's fd " << fd;
      if (fd <= 2) continue;
      if (target.rfind("socket:", 0) == 0) ++sockets;
      else ++others;
    }
    EXPECT_EQ(sockets, 1) << "its socket to the node, nothing else:\n" << show(fds);
    EXPECT_LE(others, 1) << "at most its signalfd:\n" << show(fds);
    p.kill();
    ASSERT_TRUE(p.join(20s));
  }
  ::close(before);
}

TEST(fd_leaks, every_descriptor_the_node_opens_is_cloexec) {
  std::set<int> preexisting;
  for (const auto& [fd, target] : mproc::test::open_fds()) preexisting.insert(fd);
  mproc::node node;
  mproc::test::guard watchdog;
  std::vector<mproc::process> running;
  for (auto m : {start_method::forkserver, start_method::spawn, start_method::fork}) {
    mproc::process p{node, sleep_long};
    p.set_start_method(m);
    p.start();
    watchdog.add(p);
    running.push_back(std::move(p));
  }
  (void)node.runtime_dir();
  constexpr long o_cloexec = 02000000;
  auto fds = mproc::test::open_fds();
  int checked = 0;
  for (const auto& [fd, target] : fds) {
    if (preexisting.count(fd) != 0) continue;
    long flags = mproc::test::fd_flags(fd);
    if (flags < 0) continue;  // closed meanwhile
    ++checked;
    EXPECT_NE(flags & o_cloexec, 0) << "fd " << fd << " (" << target << ") is not CLOEXEC";
  }
  EXPECT_GT(checked, 3) << "expected the node to hold a few descriptors:\n" << show(fds);
  for (auto& p : running) {
    p.kill();
    EXPECT_TRUE(p.join(20s));
  }
}

}  // namespace
