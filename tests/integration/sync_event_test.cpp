// mproc::event: set/clear/is_set, wait returning the flag, timeouts on the monotonic clock, and
// a waiter in another process (per start method).
#include <gtest/gtest.h>

#include <mproc/mproc.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

/// Exit 0 once `go` is set (within 10 s), after saying it waits.
void wait_for_go(mproc::event go, mproc::event waiting) {
  waiting.set();
  if (!go.wait(10s)) std::_Exit(2);
}
MPROC_ENTRY(wait_for_go);

class sync_event : public mproc::test::method_test {};

TEST_P(sync_event, set_wakes_waiters_in_other_processes) {
  auto go = mproc::event::create();
  std::vector<mproc::process> ps;
  std::vector<mproc::event> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(mproc::event::create());
    ps.push_back(start(wait_for_go, go, waiting.back()));
  }
  for (auto& w : waiting) EXPECT_TRUE(w.wait(10s));
  go.set();
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_event, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(sync_event_local, flag_and_timeouts) {
  auto e = mproc::event::create();
  EXPECT_FALSE(e.is_set());
  mproc::test::expect_waits_out(60ms, [&] { EXPECT_FALSE(e.wait(60ms)); });  // the flag, as in Python
  e.set();
  EXPECT_TRUE(e.is_set());
  EXPECT_TRUE(e.wait(0ms));
  EXPECT_TRUE(e.wait());
  e.set();  // idempotent
  e.clear();
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(0ms));
}

TEST(sync_event_local, set_from_another_thread_wakes_a_waiter) {
  auto e = mproc::event::create();
  std::thread setter{[&] {
    std::this_thread::sleep_for(20ms);
    e.set();
  }};
  EXPECT_TRUE(e.wait(5s));
  setter.join();
}

TEST(sync_event_local, empty_handle_is_an_error) {
  mproc::event empty;
  try {
    empty.set();
    FAIL() << "set on an empty handle";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::invalid_argument);
  }
  EXPECT_THROW(empty.wait(1ms), mproc::error);
  EXPECT_THROW(empty.is_set(), mproc::error);
}

}  // namespace
