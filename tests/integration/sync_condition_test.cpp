// mproc::condition: wait/notify/notify_all/wait_for, misuse without the lock, timeouts on the
// monotonic clock, a producer and consumers in other processes (per start method).
#include <gtest/gtest.h>

#include <atomic>
#include <mproc/mproc.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

/// Takes `n` items, each waiting (under the condition's lock) until one is there.
void consume(mproc::condition c, mproc::value<std::int64_t> items, int n) {
  for (int i = 0; i < n; ++i) {
    auto held = c.hold();
    if (!c.wait_for([&] { return *items.get_obj() > 0; }, 10s)) std::_Exit(2);
    --*items.get_obj();
  }
}
MPROC_ENTRY(consume);

class sync_condition : public mproc::test::method_test {};

TEST_P(sync_condition, consumers_in_other_processes_take_every_item) {
  auto c = mproc::condition::create();
  auto items = mproc::value<std::int64_t>::create(0, mproc::locking::without_lock);  // c's lock guards it
  std::vector<mproc::process> ps;
  for (int i = 0; i < 2; ++i) ps.push_back(start(consume, c, items, 20));
  for (int i = 0; i < 40; ++i) {
    auto held = c.hold();
    ++*items.get_obj();
    c.notify();
  }
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(items.get(), 0);
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_condition, mproc::test::all_start_methods(), mproc::test::method_name);

/// Starts `n` threads that each wait once on `c` (lock held), counting those that were notified.
struct waiters {
  std::atomic<int> notified{0};
  std::atomic<int> waiting{0};
  std::vector<std::thread> threads;
  waiters(mproc::condition& c, int n, std::chrono::milliseconds timeout) {
    for (int i = 0; i < n; ++i)
      threads.emplace_back([&c, this, timeout] {
        auto held = c.hold();
        ++waiting;
        if (c.wait(timeout)) ++notified;
      });
  }
  ~waiters() {
    for (auto& t : threads) t.join();
  }
  /// True once all wait (the lock is free only inside wait()).
  bool all_waiting(mproc::condition& c, int n) {
    return mproc::test::eventually([&] {
      auto held = c.hold();
      return waiting == n;
    });
  }
};

TEST(sync_condition_local, notify_n_wakes_exactly_n) {
  auto c = mproc::condition::create();
  waiters w{c, 4, 10s};
  ASSERT_TRUE(w.all_waiting(c, 4));
  {
    auto held = c.hold();
    c.notify(2);
  }
  EXPECT_TRUE(mproc::test::eventually([&] { return w.notified == 2; }));
  std::this_thread::sleep_for(100ms);  // time for a wrongly woken third one to show
  EXPECT_EQ(w.notified, 2);
  {
    auto held = c.hold();
    c.notify_all();  // the other two
  }
  for (auto& t : w.threads) t.join();
  w.threads.clear();
  EXPECT_EQ(w.notified, 4);
}

TEST(sync_condition_local, notify_all_wakes_every_waiter) {
  auto c = mproc::condition::create();
  waiters w{c, 3, 10s};
  ASSERT_TRUE(w.all_waiting(c, 3));
  {
    auto held = c.hold();
    c.notify_all();
  }
  for (auto& t : w.threads) t.join();
  w.threads.clear();
  EXPECT_EQ(w.notified, 3);
}

TEST(sync_condition_local, wait_times_out_with_the_lock_held_again) {
  auto c = mproc::condition::create();
  auto held = c.hold();
  mproc::test::expect_waits_out(60ms, [&] { EXPECT_FALSE(c.wait(60ms)); });
  EXPECT_TRUE(c.get_lock().held_by_this_thread());
  c.notify();  // nobody waits: nothing happens
}

TEST(sync_condition_local, wait_for_returns_the_predicate) {
  auto c = mproc::condition::create();
  auto held = c.hold();
  int calls = 0;
  EXPECT_TRUE(c.wait_for([&] { return ++calls > 0; }, 0ms));  // checked first, no wait
  EXPECT_EQ(calls, 1);
  mproc::test::expect_waits_out(60ms, [&] { EXPECT_FALSE(c.wait_for([] { return false; }, 60ms)); });
}

TEST(sync_condition_local, wait_and_notify_need_the_lock) {
  auto c = mproc::condition::create();
  std::error_code ec;
  EXPECT_FALSE(c.wait(1ms, ec));  // Python's RuntimeError: cannot wait on un-acquired lock
  EXPECT_EQ(ec, errc::invalid_argument);
  c.notify(1, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  c.notify_all(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(c.notify(), mproc::error);
  auto held = c.hold();
  std::thread other{[&] {
    std::error_code e;
    c.notify(1, e);  // held, but by another thread
    EXPECT_EQ(e, errc::invalid_argument);
  }};
  other.join();
  mproc::condition empty;
  EXPECT_THROW(empty.wait(1ms), mproc::error);
}

}  // namespace
