// mproc::barrier: distinct arrival indices across processes (per start method), the action run
// once per passage, reuse, and every way to break it (abort, timeout, reset while waiting, an
// action that throws), with the exact errc values.
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

/// Counts passages: the action's side effect, visible to every process through its value.
mproc::value<std::int64_t>& passages() {
  static auto v = mproc::value<std::int64_t>::create(0);
  return v;
}
void count_passage() { passages().with_lock([](std::int64_t& v) { ++v; }); }
MPROC_ENTRY(count_passage);

void throw_in_action() { throw std::runtime_error{"action failed"}; }
MPROC_ENTRY(throw_in_action);

void not_registered() {}

/// Passes the barrier `rounds` times, recording each index it got in indices[round * parties + index].
void pass_rounds(mproc::barrier b, mproc::array<std::int32_t> indices, int rounds) {
  auto parties = b.parties();
  for (int r = 0; r < rounds; ++r) {
    auto i = b.wait(10s);
    indices.set(r * parties + i, 1);
  }
}
MPROC_ENTRY(pass_rounds);

class sync_barrier : public mproc::test::method_test {};

// The action's counter is a static of the test program: only fork children share the parent's.
TEST(sync_barrier_fork, parties_get_distinct_indices_and_the_action_runs_once_per_passage) {
  mproc::node node{mproc::test::with_method(mproc::start_method::fork)};
  mproc::test::guard watchdog{30s};
  auto b = mproc::barrier::create(3, count_passage);
  auto indices = mproc::array<std::int32_t>::create(3 * 4, 0);
  passages().set(0);
  std::vector<mproc::process> ps;
  for (int i = 0; i < 3; ++i) {
    ps.push_back(node.spawn(pass_rounds, b, indices, 4));
    watchdog.add(ps.back());
  }
  for (auto& p : ps) {
    ASSERT_TRUE(p.join(20s));
    EXPECT_EQ(p.exitcode(), 0);
  }
  for (auto seen : indices.to_vector()) EXPECT_EQ(seen, 1);  // 0, 1, 2 in each of 4 rounds
  EXPECT_EQ(passages().get(), 4);
}

TEST_P(sync_barrier, indices_are_distinct_with_every_start_method) {
  auto b = mproc::barrier::create(3);
  auto indices = mproc::array<std::int32_t>::create(3 * 2, 0);
  std::vector<mproc::process> ps;
  for (int i = 0; i < 2; ++i) ps.push_back(start(pass_rounds, b, indices, 2));
  for (int r = 0; r < 2; ++r) indices.set(r * 3 + b.wait(10s), 1);
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
  for (auto seen : indices.to_vector()) EXPECT_EQ(seen, 1);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_barrier, mproc::test::all_start_methods(), mproc::test::method_name);

/// Runs b.wait(timeout) in a thread; the error code lands in `ec`.
std::thread waiter(mproc::barrier& b, std::error_code& ec, std::chrono::milliseconds timeout = 10000ms) {
  return std::thread{[&b, &ec, timeout] { b.wait(timeout, ec); }};
}

/// Lets one thread wait at `b`, runs `interfere` once it waits, and returns what its wait said.
template <class F>
std::error_code while_one_waits(mproc::barrier& b, F interfere) {
  std::error_code ec;
  auto t = waiter(b, ec);
  EXPECT_TRUE(mproc::test::eventually([&] { return b.n_waiting() == 1; }));
  interfere();
  t.join();
  return ec;
}

TEST(sync_barrier_local, first_to_arrive_gets_zero_and_the_last_runs_the_action) {
  auto b = mproc::barrier::create(2, count_passage);
  passages().set(0);
  std::size_t first = 99;
  std::thread t{[&] { first = b.wait(10s); }};
  ASSERT_TRUE(mproc::test::eventually([&] { return b.n_waiting() == 1; }));
  EXPECT_EQ(passages().get(), 0);  // nobody ran it yet
  EXPECT_EQ(b.wait(10s), 1u);
  t.join();
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(passages().get(), 1);
  EXPECT_EQ(mproc::barrier::create(1).wait(), 0u);  // one party passes at once
}

TEST(sync_barrier_local, abort_breaks_it_for_waiters_and_later_callers_until_reset) {
  auto b = mproc::barrier::create(3);
  EXPECT_EQ(while_one_waits(b, [&] { b.abort(); }), errc::broken_barrier);
  EXPECT_TRUE(b.broken());
  std::error_code later;
  b.wait(1s, later);
  EXPECT_EQ(later, errc::broken_barrier);
  try {
    b.wait(1s);
    FAIL() << "passed a broken barrier";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::broken_barrier);
  }
  b.reset();
  EXPECT_FALSE(b.broken());
  std::error_code again;
  auto t2 = waiter(b, again);
  auto t3 = waiter(b, again);
  EXPECT_LT(b.wait(10s), 3u);  // usable again
  t2.join();
  t3.join();
  EXPECT_FALSE(again);
}

TEST(sync_barrier_local, a_timeout_breaks_it) {
  auto b = mproc::barrier::create(2);
  std::error_code ec;
  mproc::test::expect_waits_out(60ms, [&] { b.wait(60ms, ec); });
  EXPECT_EQ(ec, errc::broken_barrier);
  EXPECT_TRUE(b.broken());
}

TEST(sync_barrier_local, the_default_timeout_applies_to_wait) {
  auto b = mproc::barrier::create(2, nullptr, 50ms);
  mproc::test::expect_waits_out(50ms, [&] { EXPECT_THROW(b.wait(), mproc::error); });
  EXPECT_TRUE(b.broken());
}

TEST(sync_barrier_local, reset_while_waiting_breaks_the_waiters_and_then_it_works) {
  auto b = mproc::barrier::create(2);
  EXPECT_EQ(while_one_waits(b, [&] { b.reset(); }), errc::broken_barrier);
  EXPECT_FALSE(b.broken());  // reset, not broken: the next passage works
  std::error_code ok;
  auto t2 = waiter(b, ok);
  b.wait(10s);
  t2.join();
  EXPECT_FALSE(ok);
}

TEST(sync_barrier_local, an_action_that_throws_breaks_it_and_reaches_the_last_waiter) {
  auto b = mproc::barrier::create(2, throw_in_action);
  auto ec = while_one_waits(b, [&] { EXPECT_THROW(b.wait(10s), std::runtime_error); });
  EXPECT_EQ(ec, errc::broken_barrier);
  EXPECT_TRUE(b.broken());
}

TEST(sync_barrier_local, misuse_is_a_typed_error) {
  try {
    (void)mproc::barrier::create(0);
    FAIL() << "zero parties";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::invalid_argument);
  }
  try {
    (void)mproc::barrier::create(2, not_registered);
    FAIL() << "an unregistered action";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::unknown_entry);
  }
  mproc::barrier empty;
  std::error_code ec;
  empty.wait(1ms, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(empty.abort(), mproc::error);
  EXPECT_EQ(mproc::barrier::create(4).parties(), 4u);
}

}  // namespace
