// Mutexes of process-wide objects held across fork() (framework/src/hold_across_fork.hpp): a
// process forks over and over while another of its threads keeps taking one of them through
// the API that takes it, and every child uses that same API at once and must exit 0 in time.
//
// What these would catch: a child that inherits the mutex locked by the other thread hangs on
// its first use (nothing done in the child); a prepare handler that cannot take the mutex, or a
// parent handler that does not give it back, hangs the fork or the hammering thread; a child
// handler that does not unlock it hangs the child. The other thread holds the mutex for a good
// share of its time: with hold_across_fork made a no-op (nothing held, nothing renewed), 50-65
// of the 200 children hung in the shared-memory test, 26-67 in the runtime test, 12-19 in the
// semaphore test, 16-27 in the body test and 128-188 in the shutdown-hook test (3 runs each,
// release build). The former placement-new renewal in the
// child passed them as well, also under TSan (3 of 3 runs): they pin what a child can do, not
// how; the renewal was undefined behaviour all the same.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mproc/mproc.hpp>
#include <thread>
#include <vector>

#include "../../framework/src/mailbox/body_pool.hpp"
#include "../../framework/src/mailbox/runtime.hpp"
#include "../../framework/src/node_impl.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int forks = 200;
constexpr auto child_limit = 5s;

/// Waits up to `limit` for `pid`; SIGKILLs it when it is still there. Its exit code, or -1 when
/// it had to be killed or did not exit normally.
int reap_within(pid_t pid, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(200us);
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return -1;
}

/// Forks `forks` times while `hammer` runs over and over on another thread. Each child runs
/// `child` first thing and exits 0 when it returned true. Returns how many children exited 0
/// in time; stops at the first that did not (so a hang costs one child_limit, not 200).
int children_ok_while_hammering(const std::function<void()>& hammer, const std::function<bool()>& child) {
  std::atomic<bool> stop{false};
  std::atomic<long> rounds{0};
  std::thread other{[&] {
    while (!stop.load(std::memory_order_relaxed)) {
      hammer();
      rounds.fetch_add(1, std::memory_order_relaxed);
    }
  }};
  while (rounds.load() == 0) std::this_thread::yield();  // forks begin with the thread at work
  int ok = 0;
  for (int i = 0; i < forks; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) break;
    if (pid == 0) {
      bool used = false;
      try {
        used = child();
      } catch (...) {
      }
      ::_exit(used ? 0 : 1);  // _exit: nothing of the parent's program state runs here
    }
    int code = reap_within(pid, child_limit);
    if (code != 0) {
      ADD_FAILURE() << "child " << i << " of " << forks << (code < 0 ? " hung (killed)" : " exited ") << code;
      break;
    }
    ++ok;
  }
  stop.store(true);
  other.join();
  EXPECT_GT(rounds.load(), forks) << "the other thread hardly ran: the forks were not tested against it";
  return ok;
}

TEST(fork_held_mutexes, a_child_makes_shared_memory_while_another_thread_maps_blocks) {
  mproc::test::guard watchdog{60s};
  auto block = mproc::shared_memory::create(4096);
  // adopt() takes the mapping cache's mutex; a duplicate of a known block is found there.
  auto hammer = [&] {
    int fd = ::dup(block.native_handle());
    auto again = mproc::shared_memory::adopt(fd, block.size());
    auto fresh = mproc::shared_memory::create(4096);
  };
  auto child = [&] {
    auto mine = mproc::shared_memory::create(4096);
    std::memset(mine.data(), 1, mine.size());
    auto same = mproc::shared_memory::adopt(::dup(block.native_handle()), block.size());
    return same.data() == block.data();  // found in the inherited cache
  };
  EXPECT_EQ(children_ok_while_hammering(hammer, child), forks);
}

TEST(fork_held_mutexes, a_child_acquires_a_semaphore_while_another_thread_does) {
  mproc::test::guard watchdog{60s};
  // The first unit a process takes of a semaphore is remembered in its list of semaphores, under
  // the list's mutex; a long list keeps it held long enough for forks to meet it held.
  std::vector<mproc::semaphore> sems;
  for (int i = 0; i < 256; ++i) sems.push_back(mproc::semaphore::create(2));
  std::size_t next = 0;
  auto hammer = [&] {
    auto& sem = sems[next++ % sems.size()];
    sem.acquire();
    sem.release();
  };
  auto child = [&] {
    if (!sems[0].acquire(child_limit / 2)) return false;
    sems[0].release();
    mproc::semaphore::keep_units_of_this_process();  // walks the same list, as a child's end does
    return true;
  };
  EXPECT_EQ(children_ok_while_hammering(hammer, child), forks);
}

TEST(fork_held_mutexes, a_child_gets_its_own_mailbox_runtime_while_another_thread_asks_for_one) {
  mproc::test::guard watchdog{60s};
  using mproc::detail::mailbox_runtime;
  mailbox_runtime* parents = &mailbox_runtime::instance();
  auto generation = mproc::detail::fork_generation();
  auto hammer = [] { mailbox_runtime::instance(); };  // takes the runtime slot's mutex
  auto child = [&] {
    mailbox_runtime* mine = &mailbox_runtime::instance();
    return mine != parents && &mailbox_runtime::instance() == mine && mproc::detail::fork_generation() != generation;
  };
  EXPECT_EQ(children_ok_while_hammering(hammer, child), forks);
}

TEST(fork_held_mutexes, a_child_lends_and_borrows_a_body_while_another_thread_does) {
  mproc::test::guard watchdog{60s};
  namespace bp = mproc::detail::body_pool;
  // The body of a large message: a producer reserves it in its pool and a reader maps it through
  // its cache of mappings, each under a mutex of its own (both taken in every round here).
  std::vector<std::byte> payload(4096, std::byte{7});
  auto lend_and_borrow = [&] {
    std::span<const std::byte> piece{payload};
    auto fd = bp::lend({&piece, 1}, payload.size(), false);
    if (!fd) return false;
    auto m = bp::borrow(fd.get(), payload.size());
    bool same = std::memcmp(bp::encoding(*m, payload.size()).data(), payload.data(), payload.size()) == 0;
    bp::release(*m);
    return same;
  };
  auto hammer = [&] { lend_and_borrow(); };
  EXPECT_EQ(children_ok_while_hammering(hammer, lend_and_borrow), forks);
}

TEST(fork_held_mutexes, a_child_registers_a_node_shutdown_hook_while_another_thread_does) {
  mproc::test::guard watchdog{60s};
  // Every fork child's node takes the hooks' mutex when it ends. Hooks are only ever added (and
  // run at a node's end, which this test has none of), so the other thread pauses ~2 us between
  // two: the list stays a few MB, and the mutex is still held at a few of the 200 forks.
  auto hammer = [] {
    mproc::detail::at_node_shutdown([] {});
    auto until = std::chrono::steady_clock::now() + 2us;
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  auto child = [] {
    mproc::detail::at_node_shutdown([] {});
    return true;
  };
  EXPECT_EQ(children_ok_while_hammering(hammer, child), forks);
}

}  // namespace
