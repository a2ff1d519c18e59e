// The node manager: daemon rules, destructors, zombies, runtime directory, fd hygiene, misuse.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::start_method;
namespace fs = std::filesystem;

namespace {

void nap(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void sleep_forever() { std::this_thread::sleep_for(1h); }
void not_registered() {}
/// Exits with the number of open fds other than 0, 1, 2 and `allowed` (its channel).
void count_fds(std::string forbidden_path) {
  int extra = 0;
  for (const auto& e : fs::directory_iterator{"/proc/self/fd"}) {
    int fd = std::atoi(e.path().filename().c_str());
    if (fd <= 2) continue;
    std::error_code ec;
    auto target = fs::read_symlink(e.path(), ec).string();
    if (target == forbidden_path) std::exit(50);  // inherited the parent's private fd
    if (target.rfind("socket:", 0) == 0) continue;  // the channel to the node
    if (target.find("/proc/") != std::string::npos && target.find("/fd") != std::string::npos) continue;
    ++extra;
  }
  std::exit(extra);
}

}  // namespace

MPROC_ENTRY(nap);
MPROC_ENTRY(sleep_forever);
MPROC_ENTRY(count_fds);

namespace {

template <class F>
void expect_errc(errc want, F&& f) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), want) << e.what();
  }
}

TEST(node, daemon_terminated_and_others_joined_at_shutdown) {
  mproc::test::kill_on_exit cleanup;
  std::optional<mproc::process> daemon, worker;
  pid_t daemon_pid, worker_pid;
  auto t0 = std::chrono::steady_clock::now();
  {
    mproc::node node;
    daemon.emplace(node, sleep_forever);
    daemon->set_daemon(true);
    daemon->start();
    worker.emplace(node, nap, 300);
    worker->start();
    daemon_pid = daemon->pid();
    worker_pid = worker->pid();
    cleanup.add(daemon_pid);
    cleanup.add(worker_pid);
  }  // ~node
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);  // it waited for the worker
  EXPECT_EQ(daemon->exitcode(), -SIGTERM);
  EXPECT_EQ(worker->exitcode(), 0);
  EXPECT_FALSE(mproc::test::pid_running(daemon_pid));
  EXPECT_FALSE(mproc::test::pid_running(worker_pid));
}

TEST(node, process_destructor_does_not_kill) {
  mproc::node node;
  pid_t pid;
  {
    auto p = node.spawn(nap, 300);
    pid = p.pid();
  }
  EXPECT_TRUE(mproc::test::pid_running(pid));
  auto kids = node.active_children();
  EXPECT_NE(std::find(kids.begin(), kids.end(), pid), kids.end());
}

TEST(node, active_children_lists_only_running) {
  mproc::node node;
  auto a = node.spawn(sleep_forever);
  auto b = node.spawn(nap, 0);
  b.join();
  auto kids = node.active_children();
  EXPECT_NE(std::find(kids.begin(), kids.end(), a.pid()), kids.end());
  EXPECT_EQ(std::find(kids.begin(), kids.end(), b.pid()), kids.end());
  a.kill();
  a.join();
}

TEST(node, no_zombies_left) {
  for (auto m : {start_method::forkserver, start_method::spawn, start_method::fork}) {
    mproc::node node{mproc::test::with_method(m)};
    std::vector<mproc::process> ps;
    for (int i = 0; i < 5; ++i) ps.push_back(node.spawn(nap, 0));
    for (auto& p : ps) p.join();
    EXPECT_TRUE(mproc::test::eventually([&] {
      return mproc::test::zombie_children(::getpid()).empty() &&
             (node.forkserver_pid() == 0 || mproc::test::zombie_children(node.forkserver_pid()).empty());
    })) << mproc::to_string(m);
  }
}

TEST(node, runtime_dir_is_private_and_removed) {
  fs::path dir;
  {
    mproc::node node;
    dir = node.runtime_dir();
    struct stat st;
    ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(st.st_uid, ::geteuid());
    ASSERT_EQ(::lstat(dir.parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u);
  }
  EXPECT_FALSE(fs::exists(dir));
}

TEST(node, stale_runtime_dir_reclaimed_live_one_kept) {
  mproc::test::temp_dir tmp;
  auto root = tmp.path() / "root";
  fs::create_directory(root);
  fs::permissions(root, fs::perms::owner_all);
  // A crashed node: a pid that exists (ours) but a start time that does not match.
  auto stale = root / ("node-" + std::to_string(::getpid()) + "-1");
  // Another live "node": pid 1 with its real start time.
  std::ifstream in{"/proc/1/stat"};
  std::string stat;
  std::getline(in, stat);
  std::istringstream rest{stat.substr(stat.rfind(')') + 2)};
  std::string field;
  for (int i = 3; i <= 22; ++i) rest >> field;
  auto live = root / ("node-1-" + field);
  fs::create_directory(stale);
  fs::create_directory(live);
  {
    mproc::node node{mproc::test::with_root(root)};
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(fs::exists(live));
    EXPECT_EQ(node.runtime_dir().parent_path(), root);
  }
}

TEST(node, unsafe_runtime_root_refused) {
  mproc::test::temp_dir tmp;
  auto root = tmp.path() / "open";
  fs::create_directory(root);
  fs::permissions(root, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  expect_errc(errc::runtime_dir, [&] { mproc::node node{mproc::test::with_root(root)}; });
}

TEST(node, children_inherit_no_stray_fds) {
  // Opened before the node (and thus before the fork server) without O_CLOEXEC.
  int leaky = ::open("/etc/hostname", O_RDONLY);
  ASSERT_GE(leaky, 0);
  {
    mproc::node node;
    for (auto m : {start_method::forkserver, start_method::spawn}) {
      mproc::process p{node, count_fds, std::string{"/etc/hostname"}};
      p.set_start_method(m);
      p.start();
      p.join();
      EXPECT_EQ(p.exitcode(), 0) << mproc::to_string(m) << ": 50 means the fd leaked, else the count of extra fds";
    }
  }
  ::close(leaky);
}

TEST(misuse, calls_before_start) {
  mproc::node node;
  mproc::process p{node, nap, 0};
  expect_errc(errc::not_started, [&] { p.join(); });
  expect_errc(errc::not_started, [&] { p.join(1ms); });
  expect_errc(errc::not_started, [&] { p.terminate(); });
  expect_errc(errc::not_started, [&] { p.kill(); });
  std::error_code ec;
  p.join(ec);
  EXPECT_EQ(ec, errc::not_started);
  p.terminate(ec);
  EXPECT_EQ(ec, errc::not_started);
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.pid(), 0);
  EXPECT_FALSE(p.exitcode());
}

TEST(misuse, start_twice_and_late_setters) {
  mproc::node node;
  mproc::process p{node, nap, 0};
  p.start();
  expect_errc(errc::already_started, [&] { p.start(); });
  std::error_code ec;
  p.start(ec);
  EXPECT_EQ(ec, errc::already_started);
  expect_errc(errc::already_started, [&] { p.set_daemon(true); });
  expect_errc(errc::already_started, [&] { p.set_start_method(start_method::fork); });
  p.join();
}

TEST(misuse, unregistered_function_needs_fork) {
  mproc::node node;
  for (auto m : {start_method::forkserver, start_method::spawn}) {
    mproc::process p{node, not_registered};
    p.set_start_method(m);
    expect_errc(errc::unknown_entry, [&] { p.start(); });
    EXPECT_FALSE(p.is_alive());
  }
  mproc::process f{node, not_registered};
  f.set_start_method(start_method::fork);
  f.start();
  f.join();
  EXPECT_EQ(f.exitcode(), 0);
}

TEST(misuse, lambda_needs_fork) {
  mproc::node node;
  int x = 1;
  mproc::process p{node, [&] { (void)x; }};
  expect_errc(errc::unsupported_target, [&] { p.start(); });
}

TEST(misuse, second_node_and_no_node) {
  {
    mproc::node node;
    expect_errc(errc::invalid_argument, [] { mproc::node second; });
  }
  expect_errc(errc::no_node, [] { mproc::node::current(); });
  class lone : public mproc::process {
   protected:
    void run() override {}
  };
  lone l;
  expect_errc(errc::no_node, [&] { l.start(); });
}

}  // namespace
