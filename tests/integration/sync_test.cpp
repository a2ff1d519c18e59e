// mproc::lock, value<T> and shared_memory across real processes: mutual exclusion, timeouts on
// the monotonic clock, a holder killed while holding, misuse, and nothing left in /dev/shm.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <mproc/mproc.hpp>
#include <set>
#include <string>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

void add_under_lock(mproc::value<std::int64_t> counter, int n) {
  for (int i = 0; i < n; ++i) counter.with_lock([](std::int64_t& v) {
      auto seen = v;
      std::this_thread::yield();  // widen the window a missing lock would open
      v = seen + 1;
    });
}
MPROC_ENTRY(add_under_lock);

/// Exit 0 when the lock stays taken for the whole timeout (somebody else holds it).
void try_for_a_while(mproc::lock l) {
  auto t0 = std::chrono::steady_clock::now();
  auto got = l.acquire(50ms);
  auto took = std::chrono::steady_clock::now() - t0;
  if (got) std::_Exit(2);
  if (took < 50ms || took > 5s) std::_Exit(3);
  if (l.try_acquire()) std::_Exit(4);
}
MPROC_ENTRY(try_for_a_while);

/// Takes the lock, says so, and dies holding it.
void die_holding(mproc::lock l, mproc::queue<int> said) {
  l.acquire();
  said.put(1);
  said.join();  // the parent saw it (task_done) before we die
  ::kill(::getpid(), SIGKILL);
}
MPROC_ENTRY(die_holding);

void write_bytes(mproc::shared_memory block, std::string text) { std::memcpy(block.data(), text.data(), text.size()); }
MPROC_ENTRY(write_bytes);

class sync_test : public mproc::test::method_test {};

TEST_P(sync_test, counter_under_lock_ends_at_the_exact_total) {
  auto counter = mproc::value<std::int64_t>::create(0);
  std::vector<mproc::process> ps;
  for (int i = 0; i < 4; ++i) ps.push_back(start(add_under_lock, counter, 2000));
  for (auto& p : ps) EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(counter.get(), 8000);
}

TEST_P(sync_test, timed_acquire_in_another_process_times_out) {
  auto l = mproc::lock::create();
  auto held = l.hold();
  EXPECT_EQ(run_child(try_for_a_while, l), 0);
}

TEST_P(sync_test, a_holder_killed_while_holding_hands_the_lock_over_at_once) {
  auto l = mproc::lock::create();
  auto said = node.make_queue<int>();
  auto child = start(die_holding, l, said);
  said.get(10s);
  said.task_done();
  EXPECT_EQ(finish(child), -SIGKILL);
  auto t0 = std::chrono::steady_clock::now();
  auto got = l.acquire(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);  // the kernel released it with the holder
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, mproc::acquired::after_owner_died);
  l.release();
  EXPECT_EQ(l.acquire(1s), mproc::acquired::normally);  // and it is an ordinary lock again
  l.release();
}

TEST_P(sync_test, shared_memory_written_by_a_child) {
  auto block = mproc::shared_memory::create(4096);
  EXPECT_EQ(run_child(write_bytes, block, std::string{"from the child"}), 0);
  EXPECT_EQ(std::string(static_cast<const char*>(block.data())), "from the child");
}

INSTANTIATE_TEST_SUITE_P(all_methods, sync_test, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(sync_lock, misuse_is_a_typed_error) {
  auto l = mproc::lock::create();
  std::error_code ec;
  l.release(ec);  // not held
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_EQ(l.acquire(ec), mproc::acquired::normally);
  EXPECT_FALSE(ec);
  l.acquire(1s, ec);  // twice from one thread: no self-deadlock
  EXPECT_EQ(ec, errc::invalid_argument);
  std::thread other{[&] {
    std::error_code e;
    l.release(e);  // a thread that does not hold it
    EXPECT_EQ(e, errc::invalid_argument);
  }};
  other.join();
  l.release();
  mproc::lock empty;
  EXPECT_THROW(empty.acquire(), mproc::error);
}

TEST(sync_lock, guard_releases_at_scope_exit) {
  auto l = mproc::lock::create();
  {
    auto held = l.hold();
    EXPECT_FALSE(held.owner_died());
    std::optional<mproc::acquired> other_got = mproc::acquired::normally;
    std::thread other{[&] { other_got = l.try_acquire(); }};
    other.join();
    EXPECT_EQ(other_got, std::nullopt);  // busy for everybody else
  }
  EXPECT_EQ(l.try_acquire(), mproc::acquired::normally);
  l.release();
}

std::set<std::string> dev_shm() {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator{"/dev/shm", ec}) names.insert(e.path().filename());
  return names;
}

TEST(sync_memory, nothing_is_left_in_dev_shm) {
  auto before = dev_shm();
  {
    auto block = mproc::shared_memory::create(1 << 20);
    auto v = mproc::value<double>::create(1.5);
    auto l = mproc::lock::create();
    EXPECT_EQ(dev_shm(), before);  // anonymous: no names at all
  }
  EXPECT_EQ(dev_shm(), before);
}

}  // namespace
