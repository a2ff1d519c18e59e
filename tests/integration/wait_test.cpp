// mproc::wait over queues (owned here and owned elsewhere), pipe ends and processes.
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

void sleep_then_exit(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
MPROC_ENTRY(sleep_then_exit);

void put_later(mproc::queue<int> q, int ms, int v) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  q.put(v);
}
MPROC_ENTRY(put_later);

/// In a child: waits on a queue owned by the parent; exit 0 when it became ready in time and
/// the value is there.
void wait_on_parents_queue(mproc::queue<int> q, mproc::queue<int> started) {
  started.put(1);
  auto ready = mproc::wait({q}, 10s);
  if (ready != std::vector<std::size_t>{0}) std::_Exit(2);
  auto v = q.try_get();
  std::_Exit(v == 7 ? 0 : 3);
}
MPROC_ENTRY(wait_on_parents_queue);

TEST(wait, nothing_ready_times_out_on_the_monotonic_clock) {
  mproc::node node;
  auto q = node.make_queue<int>();
  auto [a, b] = mproc::make_pipe<int>();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(mproc::wait({q, b}, 60ms).empty());
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 60ms);
  EXPECT_LT(took, 2s);
  EXPECT_TRUE(mproc::wait({q, b}, 0ms).empty());
}

TEST(wait, reports_exactly_the_ready_ones) {
  mproc::node node;
  auto q1 = node.make_queue<int>();
  auto q2 = node.make_queue<int>();
  auto [a, b] = mproc::make_pipe<int>();
  q2.put(5);
  EXPECT_EQ(mproc::wait({q1, q2, b}, 1s), (std::vector<std::size_t>{1}));
  a.send(3);
  EXPECT_EQ(mproc::wait({q1, q2, b}, 1s), (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(q2.get(), 5);
  EXPECT_EQ(b.recv(), 3);
  EXPECT_TRUE(mproc::wait({q1, q2, b}, 10ms).empty());  // taken: no longer ready
}

TEST(wait, wakes_when_a_child_puts_and_when_a_process_exits) {
  mproc::node node;
  mproc::test::guard watchdog{30s};
  auto q = node.make_queue<int>();
  auto putter = node.spawn(put_later, q, 50, 42);
  watchdog.add(putter);
  auto sleeper = node.spawn(sleep_then_exit, 300);
  watchdog.add(sleeper);
  EXPECT_EQ(mproc::wait({q, sleeper}, 10s), (std::vector<std::size_t>{0}));
  EXPECT_EQ(q.get(), 42);
  EXPECT_EQ(mproc::wait({q, sleeper}, 10s), (std::vector<std::size_t>{1}));
  sleeper.join();
  EXPECT_EQ(mproc::wait({sleeper}, 0ms), (std::vector<std::size_t>{0}));  // exited stays ready
  putter.join();
}

TEST(wait, closed_queue_and_ended_pipe_are_ready) {
  mproc::node node;
  auto q = node.make_queue<int>();
  auto [r, w] = mproc::make_simplex_pipe<int>();
  q.close();
  w.close();
  EXPECT_EQ(mproc::wait({q, r}, 1s), (std::vector<std::size_t>{0, 1}));
}

TEST(wait, a_queue_owned_by_another_process) {
  mproc::node node;
  mproc::test::guard watchdog{30s};
  auto q = node.make_queue<int>();
  auto started = node.make_queue<int>();
  auto child = node.spawn(wait_on_parents_queue, q, started);
  watchdog.add(child);
  started.get(10s);
  std::this_thread::sleep_for(50ms);
  q.put(7);
  ASSERT_TRUE(child.join(20s));
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(wait, misuse_is_a_typed_error) {
  mproc::node node;
  mproc::queue<int> empty;
  std::error_code ec;
  mproc::waitable w{empty};
  mproc::wait(std::span<const mproc::waitable>{&w, 1}, 10ms, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  mproc::process never_started{node};
  EXPECT_THROW(mproc::wait({never_started}, 10ms), mproc::error);
}

}  // namespace
