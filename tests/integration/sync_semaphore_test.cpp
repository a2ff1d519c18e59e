// mproc::semaphore and bounded_semaphore: counting across processes (per start method), a
// semaphore as a signal between processes, timeouts on the monotonic clock, over-release.
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

/// Enters `slots` n times, recording the most processes it ever saw inside at once.
void enter_slots(mproc::semaphore slots, mproc::array<std::int64_t> inside_and_peak, int n) {
  for (int i = 0; i < n; ++i) {
    auto held = slots.hold();
    inside_and_peak.with_lock([](std::span<std::int64_t> x) { x[1] = std::max(x[1], ++x[0]); });
    std::this_thread::sleep_for(200us);
    inside_and_peak.with_lock([](std::span<std::int64_t> x) { --x[0]; });
  }
}
MPROC_ENTRY(enter_slots);

/// Waits for a signal, consumes it and ends normally.
void take_signal(mproc::semaphore signal) {
  if (!signal.acquire(10s)) std::_Exit(2);
}
MPROC_ENTRY(take_signal);

void give_signal(mproc::semaphore signal) { signal.release(); }
MPROC_ENTRY(give_signal);

/// Exit 0 when the semaphore arrived bounded: full, it refuses one more release.
void over_release(mproc::bounded_semaphore b) {
  std::error_code ec;
  b.release(ec);
  if (ec != errc::invalid_argument) std::_Exit(2);
  if (b.acquire(10s) != mproc::acquired::normally) std::_Exit(3);  // and it counts: one taken
}
MPROC_ENTRY(over_release);

class sync_semaphore : public mproc::test::method_test {};

TEST_P(sync_semaphore, at_most_value_processes_inside) {
  auto slots = mproc::semaphore::create(2);
  auto stats = mproc::array<std::int64_t>::create(2, 0);
  std::vector<mproc::process> ps;
  for (int i = 0; i < 4; ++i) ps.push_back(start(enter_slots, slots, stats, 50));
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
  EXPECT_LE(stats.get(1), 2);
  EXPECT_GE(stats.get(1), 1);
  EXPECT_EQ(stats.get(0), 0);
  EXPECT_EQ(slots.get_value(), 2u);
}

TEST_P(sync_semaphore, a_signal_released_by_one_process_is_consumed_by_another) {
  auto signal = mproc::semaphore::create(0);
  auto consumer = start(take_signal, signal);
  auto producer = start(give_signal, signal);
  EXPECT_EQ(finish(producer), 0);
  EXPECT_EQ(finish(consumer), 0);
  // The consumer ended normally: the unit it took stays taken (not returned as a dead holder's).
  EXPECT_EQ(signal.try_acquire(), std::nullopt);
  EXPECT_EQ(signal.get_value(), 0u);
}

TEST_P(sync_semaphore, a_bounded_semaphore_stays_bounded_in_a_child) {
  auto b = mproc::bounded_semaphore::create(1);
  EXPECT_EQ(run_child(over_release, b), 0);
  EXPECT_EQ(b.get_value(), 0u);  // the child ended normally: its unit stays taken
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_semaphore, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(sync_semaphore_local, counts_and_times_out_on_the_monotonic_clock) {
  auto s = mproc::semaphore::create(2);
  EXPECT_EQ(s.get_value(), 2u);
  EXPECT_EQ(s.acquire(), mproc::acquired::normally);
  EXPECT_EQ(s.try_acquire(), mproc::acquired::normally);
  EXPECT_EQ(s.try_acquire(), std::nullopt);
  mproc::test::expect_waits_out(60ms, [&] { EXPECT_EQ(s.acquire(60ms), std::nullopt); });
  s.release();
  s.release();
  s.release();  // an unbounded semaphore may grow, as Python's
  EXPECT_EQ(s.get_value(), 3u);
}

TEST(sync_semaphore_local, release_from_another_thread_wakes_a_waiter) {
  auto s = mproc::semaphore::create(0);
  std::thread releaser{[&] {
    std::this_thread::sleep_for(20ms);
    s.release();
  }};
  EXPECT_EQ(s.acquire(5s), mproc::acquired::normally);
  releaser.join();
}

TEST(sync_semaphore_local, bounded_refuses_to_grow_past_its_initial_value) {
  auto b = mproc::bounded_semaphore::create(2);
  std::error_code ec;
  b.release(ec);  // Python's ValueError
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_EQ(b.get_value(), 2u);
  {
    auto held = b.hold();
    EXPECT_EQ(b.get_value(), 1u);
  }
  EXPECT_EQ(b.get_value(), 2u);
  EXPECT_THROW(b.release(), mproc::error);
  auto zero = mproc::bounded_semaphore::create(0);
  zero.release(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
}

TEST(sync_semaphore_local, a_bounded_block_is_checked_when_attached) {
  auto plain = mproc::semaphore::create(1);
  try {
    (void)mproc::bounded_semaphore::attach(plain.memory());
    FAIL() << "an unbounded semaphore attached as a bounded one";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::bad_message);
  }
}

TEST(sync_semaphore_local, travels_inside_a_queue_message_as_the_same_semaphore) {
  mproc::node node;
  auto q = node.make_queue<mproc::semaphore>();
  auto original = mproc::semaphore::create(1);
  q.put(original);
  auto received = q.get(1s);
  ASSERT_TRUE(received.try_acquire().has_value());
  EXPECT_FALSE(original.try_acquire().has_value()) << "the received handle is another semaphore";
  received.release();
  EXPECT_TRUE(original.try_acquire().has_value());
}

TEST(sync_semaphore_local, empty_handle_is_an_error) {
  mproc::semaphore empty;
  std::error_code ec;
  empty.acquire(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  empty.release(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(empty.get_value(), mproc::error);
}

}  // namespace
