// What happens to each synchronization primitive when a process dies at the worst moment
// (SIGKILL, per start method): a holder of a lock, rlock or semaphore hands it over within
// 100 ms and the next acquirer is told; a killed waiter of a condition, event or barrier leaves
// the others working (the barrier breaks); the memory leaves nothing in /dev/shm.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <mproc/mproc.hpp>
#include <set>
#include <string>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using steady = std::chrono::steady_clock;

namespace {

/// Takes `l`, says so, and waits to be killed.
template <class Lockable>
void hold_until_killed(Lockable l, mproc::queue<int> said) {
  l.acquire();
  said.put(1);
  for (;;) ::pause();
}
void hold_lock(mproc::lock l, mproc::queue<int> said) { hold_until_killed(l, said); }
MPROC_ENTRY(hold_lock);
void hold_rlock_twice(mproc::rlock l, mproc::queue<int> said) {
  l.acquire();  // twice: a dead owner's recursion count must not matter
  hold_until_killed(l, said);
}
MPROC_ENTRY(hold_rlock_twice);
void hold_semaphore(mproc::semaphore s, mproc::queue<int> said) {
  s.acquire();  // two of its three units
  hold_until_killed(s, said);
}
MPROC_ENTRY(hold_semaphore);

void wait_on_event(mproc::event e, mproc::queue<int> said) {
  said.put(1);
  e.wait();
}
MPROC_ENTRY(wait_on_event);

void wait_on_condition(mproc::condition c, mproc::queue<int> said) {
  auto held = c.hold();
  said.put(1);
  c.wait();
}
MPROC_ENTRY(wait_on_condition);

void wait_at_barrier(mproc::barrier b, mproc::queue<int> said) {
  said.put(1);
  b.wait();
}
MPROC_ENTRY(wait_at_barrier);

/// A barrier action that kills the process running it (under the barrier's lock).
void die_in_action() { ::kill(::getpid(), SIGKILL); }
MPROC_ENTRY(die_in_action);

void arrive_on_go(mproc::barrier b, mproc::event go) {
  go.wait();
  b.wait();
}
MPROC_ENTRY(arrive_on_go);

void sleep_forever() {
  for (;;) ::pause();
}
MPROC_ENTRY(sleep_forever);

class sync_crash : public mproc::test::method_test {
 protected:
  /// Starts fn(x, said), waits until it said it is in place, and returns it.
  template <class Fn, class X>
  mproc::process start_and_wait(Fn fn, X x) {
    auto said = node.make_queue<int>();
    auto p = start(fn, x, said);
    said.get(10s);
    return p;
  }

  /// `acquire` blocks in this thread while another thread kills the holder; the hand-over is
  /// measured from the kill.
  template <class Acquire>
  void expect_handover_within_100ms(mproc::process& holder, Acquire acquire) {
    std::promise<steady::time_point> killed;
    auto when = killed.get_future();
    std::thread killer{[&] {
      std::this_thread::sleep_for(30ms);  // let the acquirer block first
      killed.set_value(steady::now());
      holder.kill();
    }};
    std::optional<mproc::acquired> got = acquire();
    auto took = steady::now() - when.get();
    killer.join();
    ASSERT_TRUE(got) << "not handed over within 5 s";
    EXPECT_EQ(*got, mproc::acquired::after_owner_died);
    // The correctness bound, not a speed figure: a waiter must not sit on a dead holder.
    EXPECT_LT(took, 100ms) << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us";
    EXPECT_EQ(finish(holder), -SIGKILL);
  }
};

TEST_P(sync_crash, lock_holder_killed) {
  auto l = mproc::lock::create();
  auto holder = start_and_wait(hold_lock, l);
  expect_handover_within_100ms(holder, [&] { return l.acquire(5s); });
  l.release();
  EXPECT_EQ(l.try_acquire(), mproc::acquired::normally);  // an ordinary lock again
  l.release();
}

TEST_P(sync_crash, rlock_owner_killed_holding_it_twice) {
  auto r = mproc::rlock::create();
  auto holder = start_and_wait(hold_rlock_twice, r);
  expect_handover_within_100ms(holder, [&] { return r.acquire(5s); });
  r.release();  // one release frees it: the dead owner's count went with it
  std::optional<mproc::acquired> other;
  std::thread t{[&] {
    other = r.try_acquire();
    if (other) r.release();
  }};
  t.join();
  EXPECT_EQ(other, mproc::acquired::normally);
}

TEST_P(sync_crash, semaphore_holder_killed) {
  auto s = mproc::semaphore::create(3);
  s.acquire();  // ours: 1 of 3; the holder takes the other 2
  auto holder = start_and_wait(hold_semaphore, s);
  EXPECT_EQ(s.get_value(), 0u);
  expect_handover_within_100ms(holder, [&] { return s.acquire(5s); });
  // Both of the dead holder's units came back; the second is reported too; ours stays ours.
  EXPECT_EQ(s.try_acquire(), mproc::acquired::after_owner_died);
  EXPECT_EQ(s.try_acquire(), std::nullopt);
  for (int i = 0; i < 3; ++i) s.release();
  EXPECT_EQ(s.get_value(), 3u);
  EXPECT_EQ(s.try_acquire(), mproc::acquired::normally);
}

TEST_P(sync_crash, killed_event_waiter_leaves_the_event_working) {
  auto e = mproc::event::create();
  auto waiter = start_and_wait(wait_on_event, e);
  waiter.kill();
  EXPECT_EQ(finish(waiter), -SIGKILL);
  EXPECT_FALSE(e.wait(20ms));
  e.set();
  EXPECT_TRUE(e.wait(1s));
}

TEST_P(sync_crash, killed_condition_waiter_does_not_swallow_a_notify) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto c = mproc::condition::create();
  // A waiter holds the lock from "said" until wait() has registered it and let the lock go: once
  // we get the lock, it waits.
  auto dead = start_and_wait(wait_on_condition, c);
  { auto held = c.hold(); }
  dead.kill();  // the oldest waiter is gone
  EXPECT_EQ(finish(dead), -SIGKILL);
  auto live = start_and_wait(wait_on_condition, c);
  {
    auto held = c.hold();
    EXPECT_FALSE(held.owner_died());
    c.notify(1);
  }
  EXPECT_EQ(finish(live, 10s), 0);  // notify(1) went to the live waiter, not the dead one
}

TEST_P(sync_crash, party_killed_at_the_barrier_breaks_it_for_the_others) {
  auto b = mproc::barrier::create(3);
  auto victim = start_and_wait(wait_at_barrier, b);
  ASSERT_TRUE(mproc::test::eventually([&] { return b.n_waiting() == 1; }));
  auto t0 = steady::now();
  std::thread killer{[&] {
    std::this_thread::sleep_for(30ms);
    victim.kill();
  }};
  std::error_code ec;
  b.wait(5s, ec);
  killer.join();
  EXPECT_EQ(ec, errc::broken_barrier);
  EXPECT_LT(steady::now() - t0, 2s);  // noticed, not timed out
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(finish(victim), -SIGKILL);
  b.reset();
  EXPECT_FALSE(b.broken());
}

TEST_P(sync_crash, process_killed_while_running_the_action_breaks_the_barrier) {
  auto b = mproc::barrier::create(2, die_in_action);
  auto go = mproc::event::create();
  // Started from this thread, which outlives it: a fork child dies with the thread that forked it
  // (PR_SET_PDEATHSIG). It arrives last, so it runs the action, once we wait.
  auto last = start(arrive_on_go, b, go);
  std::error_code ec;
  steady::duration took{};
  std::thread first{[&] {
    auto t0 = steady::now();
    b.wait(5s, ec);
    took = steady::now() - t0;
  }};
  EXPECT_TRUE(mproc::test::eventually([&] { return b.n_waiting() == 1; }));
  go.set();
  first.join();
  EXPECT_EQ(ec, errc::broken_barrier);
  EXPECT_LT(took, 3s);  // noticed, not timed out
  EXPECT_EQ(finish(last), -SIGKILL);
  EXPECT_TRUE(b.broken());
}

std::set<std::string> dev_shm() {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator{"/dev/shm", ec}) names.insert(e.path().filename());
  return names;
}

/// The targets of this process's descriptors that are memfds of mproc.
std::size_t mproc_memfds() {
  std::size_t n = 0;
  for (const auto& [fd, target] : mproc::test::open_fds())
    if (target.rfind("/memfd:mproc-shared", 0) == 0) ++n;
  return n;
}

TEST_P(sync_crash, nothing_left_in_dev_shm_after_a_holder_is_killed) {
  auto before = dev_shm();
  auto fds_before = mproc_memfds();
  {
    auto l = mproc::lock::create();
    auto s = mproc::semaphore::create(1);
    auto a = mproc::array<int>::create(1000, 7);
    auto e = mproc::event::create();
    auto c = mproc::condition::create();
    auto b = mproc::barrier::create(2);
    auto r = mproc::rlock::create();
    // The memory is a memfd: it shows as one in /proc/self/fd and has no name in any directory.
    EXPECT_EQ(mproc_memfds(), fds_before + 7);
    auto holder = start_and_wait(hold_lock, l);
    auto other = start(sleep_forever);
    (void)s, (void)a, (void)e, (void)c, (void)b, (void)r;
    EXPECT_EQ(dev_shm(), before);
    holder.kill();
    other.kill();
    EXPECT_EQ(finish(holder), -SIGKILL);
    EXPECT_EQ(finish(other), -SIGKILL);
  }
  EXPECT_EQ(mproc_memfds(), fds_before);  // our handles gone: the kernel frees the memory
  EXPECT_EQ(dev_shm(), before);
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_crash, mproc::test::all_start_methods(), mproc::test::method_name);

}  // namespace
