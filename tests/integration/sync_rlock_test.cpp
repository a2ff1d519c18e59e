// mproc::rlock: re-entrant for its owner, a typed error for anybody else's release, timeouts on
// the monotonic clock, mutual exclusion across processes (per start method).
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

void add_nested(mproc::rlock r, mproc::value<std::int64_t> counter, int n) {
  for (int i = 0; i < n; ++i) {
    auto outer = r.hold();
    auto inner = r.hold();  // re-entry by the owner
    auto* v = counter.get_obj();
    auto seen = *v;
    std::this_thread::yield();
    *v = seen + 1;
  }
}
MPROC_ENTRY(add_nested);

/// Exit 0 when the rlock stays taken for the whole 50 ms timeout.
void cannot_take(mproc::rlock r) {
  auto t0 = std::chrono::steady_clock::now();
  if (r.acquire(50ms)) std::_Exit(2);
  if (std::chrono::steady_clock::now() - t0 < 50ms) std::_Exit(3);
}
MPROC_ENTRY(cannot_take);

class sync_rlock : public mproc::test::method_test {};

TEST_P(sync_rlock, nested_holders_in_several_processes_exclude_each_other) {
  auto r = mproc::rlock::create();
  auto counter = mproc::value<std::int64_t>::create(0, mproc::locking::without_lock);
  std::vector<mproc::process> ps;
  for (int i = 0; i < 3; ++i) ps.push_back(start(add_nested, r, counter, 1000));
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(counter.get(), 3000);
}

TEST_P(sync_rlock, held_twice_means_taken_for_another_process) {
  auto r = mproc::rlock::create();
  r.acquire();
  r.acquire();
  r.release();  // still held once
  EXPECT_EQ(run_child(cannot_take, r), 0);
  r.release();
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_rlock, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(sync_rlock_local, re_entrant_for_the_owner_only) {
  auto r = mproc::rlock::create();
  EXPECT_EQ(r.acquire(), mproc::acquired::normally);
  EXPECT_EQ(r.acquire(1s), mproc::acquired::normally);
  EXPECT_EQ(r.try_acquire(), mproc::acquired::normally);
  EXPECT_TRUE(r.held_by_this_thread());
  std::thread other{[&] {
    EXPECT_FALSE(r.held_by_this_thread());
    EXPECT_EQ(r.try_acquire(), std::nullopt);
    std::error_code ec;
    r.release(ec);  // not the owner: Python's RuntimeError
    EXPECT_EQ(ec, errc::invalid_argument);
  }};
  other.join();
  r.release();
  r.release();
  r.release();  // released as often as acquired: free
  std::error_code ec;
  r.release(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(r.release(), mproc::error);
  std::thread taker{[&] {
    EXPECT_EQ(r.try_acquire(), mproc::acquired::normally);
    r.release();
  }};
  taker.join();
}

TEST(sync_rlock_local, timed_acquire_waits_the_timeout_on_the_monotonic_clock) {
  auto r = mproc::rlock::create();
  auto held = r.hold();
  std::thread other{[&] {
    mproc::test::expect_waits_out(60ms, [&] { EXPECT_EQ(r.acquire(60ms), std::nullopt); });
  }};
  other.join();
}

TEST(sync_rlock_local, guard_releases_once_and_empty_handle_is_an_error) {
  auto r = mproc::rlock::create();
  r.acquire();
  { auto held = r.hold(); }
  EXPECT_TRUE(r.held_by_this_thread());  // the guard undid only its own acquire
  r.release();
  EXPECT_FALSE(r.held_by_this_thread());
  mproc::rlock empty;
  std::error_code ec;
  empty.acquire(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(empty.release(), mproc::error);
}

}  // namespace
