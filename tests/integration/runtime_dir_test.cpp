// The node's private runtime directory: 0700, ours, removed at shutdown, stale ones reclaimed,
// unsafe roots refused.
#include <gtest/gtest.h>
#include <mproc/mproc.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::start_method;
namespace fs = std::filesystem;

namespace {

void report_runtime_dir(std::string file) {
  auto& node = mproc::node::current();
  auto dir = node.runtime_dir();
  std::ofstream{file} << dir.string() << '\n'
                      << fs::is_directory(dir) << ' ' << node.options().kill_grace.count() << std::endl;
}

}  // namespace

MPROC_ENTRY(report_runtime_dir);

namespace {

struct stat_result {
  bool ok = false;
  struct stat st {};
};
stat_result lstat_of(const fs::path& p) {
  stat_result r;
  r.ok = ::lstat(p.c_str(), &r.st) == 0;
  return r;
}

/// Expects node construction with these options to throw mproc::error; returns its code.
std::error_code construction_error(const mproc::node_options& opts) {
  try {
    mproc::node node{opts};
  } catch (const mproc::error& e) {
    return e.code();
  }
  return {};
}

/// Sets an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~scoped_env() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(runtime_dir, is_a_private_directory_of_ours_and_removed_at_shutdown) {
  fs::path dir;
  {
    mproc::node node;
    dir = node.runtime_dir();
    auto s = lstat_of(dir);
    ASSERT_TRUE(s.ok) << dir;
    EXPECT_TRUE(S_ISDIR(s.st.st_mode));
    EXPECT_EQ(s.st.st_mode & 0777, 0700u);
    EXPECT_EQ(s.st.st_uid, ::geteuid());
    auto root = lstat_of(dir.parent_path());
    ASSERT_TRUE(root.ok);
    EXPECT_TRUE(S_ISDIR(root.st.st_mode));
    EXPECT_EQ(root.st.st_mode & 077, 0u) << "the root lets others in";
    EXPECT_EQ(root.st.st_uid, ::geteuid());
    // Named after this process and its start time, so a recycled pid is never confused with it.
    auto self = mproc::test::read_stat(::getpid());
    ASSERT_TRUE(self);
    EXPECT_EQ(dir.filename().string(), "node-" + std::to_string(::getpid()) + "-" + std::to_string(self->starttime));
    EXPECT_EQ(&node.runtime_dir(), &node.runtime_dir()) << "one directory per node";
    std::ofstream{dir / "something"} << "removed with the directory";
  }
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(runtime_dir, configured_root_is_used_and_created) {
  mproc::test::temp_dir tmp;
  auto root = tmp / "a" / "b" / "root";  // created, parents too
  fs::path dir;
  {
    mproc::node node{mproc::test::with_root(root)};
    dir = node.runtime_dir();
    EXPECT_EQ(dir.parent_path(), root);
    auto s = lstat_of(root);
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.st.st_mode & 0777, 0700u);
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(root)) << "the root is shared by nodes and stays";
}

TEST(runtime_dir, environment_chooses_the_default_root) {
  mproc::test::temp_dir tmp;
  {
    scoped_env env{"MPROC_RUNTIME_DIR", (tmp / "from-env").string()};
    mproc::node node;
    EXPECT_EQ(node.runtime_dir().parent_path(), tmp / "from-env");
  }
  {
    scoped_env no_env{"MPROC_RUNTIME_DIR", std::nullopt};
    fs::create_directory(tmp / "xdg");
    fs::permissions(tmp / "xdg", fs::perms::owner_all);
    scoped_env xdg{"XDG_RUNTIME_DIR", (tmp / "xdg").string()};
    mproc::node node;
    EXPECT_EQ(node.runtime_dir().parent_path(), tmp / "xdg" / "mproc");
  }
  {
    scoped_env no_env{"MPROC_RUNTIME_DIR", std::nullopt};
    scoped_env no_xdg{"XDG_RUNTIME_DIR", std::nullopt};
    mproc::node node;
    EXPECT_EQ(node.runtime_dir().parent_path(), fs::path{"/tmp/mproc-" + std::to_string(::geteuid())});
  }
}

TEST(runtime_dir, stale_dirs_are_reclaimed_and_live_ones_kept) {
  mproc::test::guard watchdog;
  mproc::test::temp_dir tmp;
  auto root = tmp / "root";
  fs::create_directory(root);
  fs::permissions(root, fs::perms::owner_all);

  // A crashed node: its pid is dead now (a child we reaped ourselves).
  pid_t dead = dead_pid();
  auto stale_dead = root / ("node-" + std::to_string(dead) + "-1");
  // A crashed node whose pid was recycled: the pid (ours) lives, but with another start time.
  auto stale_recycled = root / ("node-" + std::to_string(::getpid()) + "-1");
  // Live nodes: a sleeping child of ours and pid 1, with their real start times.
  pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::pause();
    ::_exit(0);
  }
  watchdog.add(sleeper);
  auto sleeper_stat = mproc::test::read_stat(sleeper);
  ASSERT_TRUE(sleeper_stat);
  auto live_child = root / ("node-" + std::to_string(sleeper) + "-" + std::to_string(sleeper_stat->starttime));
  auto init_stat = mproc::test::read_stat(1);
  ASSERT_TRUE(init_stat);
  auto live_init = root / ("node-1-" + std::to_string(init_stat->starttime));
  // Not ours to judge: names that do not follow the pattern.
  auto unrelated = root / "something-else";
  auto odd = root / "node-garbage";

  for (const auto& d : {stale_dead, stale_recycled, live_child, live_init, unrelated, odd}) {
    fs::create_directory(d);
    std::ofstream{d / "file"} << "x";
  }
  fs::create_directory(stale_dead / "nested");
  {
    mproc::node node{mproc::test::with_root(root)};
    EXPECT_FALSE(fs::exists(stale_dead)) << "dir of a dead pid survived";
    EXPECT_FALSE(fs::exists(stale_recycled)) << "dir of a recycled pid survived";
    EXPECT_TRUE(fs::exists(live_child / "file")) << "dir of a live node was removed";
    EXPECT_TRUE(fs::exists(live_init / "file"));
    EXPECT_TRUE(fs::exists(unrelated / "file"));
    EXPECT_TRUE(fs::exists(odd / "file"));
    EXPECT_TRUE(fs::exists(node.runtime_dir()));
  }
  ::kill(sleeper, SIGKILL);
  int status;
  ::waitpid(sleeper, &status, 0);
}

TEST(runtime_dir, the_live_node_of_this_process_is_kept) {
  // Our own pid with our real start time is the name the node itself uses: it must be kept
  // (and used), not reclaimed as stale.
  mproc::test::temp_dir tmp;
  auto root = tmp / "root";
  fs::create_directory(root);
  fs::permissions(root, fs::perms::owner_all);
  auto self = mproc::test::read_stat(::getpid());
  ASSERT_TRUE(self);
  auto own = root / ("node-" + std::to_string(::getpid()) + "-" + std::to_string(self->starttime));
  fs::create_directory(own);
  fs::permissions(own, fs::perms::owner_all);
  mproc::node node{mproc::test::with_root(root)};
  EXPECT_EQ(node.runtime_dir(), own);
  EXPECT_TRUE(fs::exists(own));
}

TEST(runtime_dir, root_with_group_or_other_bits_is_refused) {
  mproc::test::temp_dir tmp;
  for (auto mode : {fs::perms{0755}, fs::perms{0770}, fs::perms{0701}, fs::perms{0777}}) {
    auto root = tmp / ("open-" + std::to_string(static_cast<int>(mode)));
    fs::create_directory(root);
    fs::permissions(root, mode);
    EXPECT_EQ(construction_error(mproc::test::with_root(root)), errc::runtime_dir)
        << "mode " << std::oct << static_cast<int>(mode);
    EXPECT_TRUE(fs::is_empty(root)) << "nothing may be created in a refused root";
  }
  EXPECT_EQ(mproc::node::current_or_null(), nullptr) << "a failed construction left a current node";
}

TEST(runtime_dir, root_owned_by_someone_else_is_refused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  mproc::test::temp_dir tmp;
  auto root = tmp / "theirs";
  fs::create_directory(root);
  fs::permissions(root, fs::perms::owner_all);
  ASSERT_EQ(::chown(root.c_str(), 65534, 65534), 0);
  EXPECT_EQ(construction_error(mproc::test::with_root(root)), errc::runtime_dir);
}

TEST(runtime_dir, root_that_is_a_symlink_or_a_file_is_refused) {
  mproc::test::temp_dir tmp;
  auto real = tmp / "real";
  fs::create_directory(real);
  fs::permissions(real, fs::perms::owner_all);
  fs::create_directory_symlink(real, tmp / "link");
  EXPECT_EQ(construction_error(mproc::test::with_root(tmp / "link")), errc::runtime_dir);
  std::ofstream{tmp / "file"} << "not a directory";
  EXPECT_EQ(construction_error(mproc::test::with_root(tmp / "file")), errc::runtime_dir);
  // A root that cannot be created at all: an mproc::error (runtime_dir or the OS's errno).
  auto err = construction_error(mproc::test::with_root(tmp / "file" / "below"));
  EXPECT_TRUE(err) << "a node was constructed under a regular file";
}

TEST(runtime_dir, children_keep_their_runtime_dirs_under_the_nodes_root) {
  // Regression: a child's node used to rebuild its options from the start method alone, so its
  // runtime dir landed under the default root instead of the configured one (and it used the
  // default kill_grace).
  mproc::test::temp_dir tmp;
  auto root = tmp / "root";
  auto opts = mproc::test::with_root(root);
  opts.kill_grace = 250ms;
  mproc::node node{opts};
  mproc::test::guard watchdog;
  for (auto m : {start_method::forkserver, start_method::spawn, start_method::fork}) {
    auto file = tmp / ("report-" + std::string{mproc::to_string(m)});
    mproc::process p{node, report_runtime_dir, file.string()};
    p.set_start_method(m);
    p.start();
    watchdog.add(p);
    ASSERT_TRUE(p.join(20s));
    ASSERT_EQ(p.exitcode(), 0);
    std::istringstream in{mproc::test::read_file(file)};
    std::string dir;
    int existed = 0;
    long grace = 0;
    std::getline(in, dir);
    in >> existed >> grace;
    EXPECT_EQ(existed, 1) << mproc::to_string(m);
    EXPECT_NE(fs::path{dir}, node.runtime_dir()) << "a child needs a directory of its own";
    EXPECT_FALSE(fs::exists(dir)) << mproc::to_string(m) << ": the child's runtime dir outlived it: " << dir;
    EXPECT_EQ(fs::path{dir}.parent_path(), root) << mproc::to_string(m) << ": not under the configured root";
    EXPECT_EQ(grace, 250) << mproc::to_string(m) << ": the child's node did not inherit kill_grace";
  }
}

}  // namespace
