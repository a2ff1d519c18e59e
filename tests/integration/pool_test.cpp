// mproc::pool with real worker processes: CPython's Pool semantics (apply, map, starmap, imap,
// empty inputs, exceptions, timeouts on get, close-then-join, terminate, maxtasksperchild,
// initializer) and what Python lacks: workers dying mid-task never hang the pool.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mproc/mproc.hpp>
#include <numeric>
#include <random>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::test::method_test;

namespace {

int square(int x) { return x * x; }
MPROC_ENTRY(square);

int add(int a, int b) { return a + b; }
MPROC_ENTRY(add);

int worker_pid(int) { return static_cast<int>(::getpid()); }
MPROC_ENTRY(worker_pid);

void nothing(int) {}
MPROC_ENTRY(nothing);

int throw_on_negative(int x) {
  if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
  return x;
}
MPROC_ENTRY(throw_on_negative);

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
MPROC_ENTRY(sleep_ms);

/// Throws for a negative argument, sleeps that many milliseconds otherwise.
int sleep_or_throw(int ms) { return sleep_ms(throw_on_negative(ms)); }
MPROC_ENTRY(sleep_or_throw);

/// Dies by SIGKILL the first time it runs for `marker` (a file it creates), returns 7 after.
int die_once(std::string marker) {
  if (!std::filesystem::exists(marker)) {
    std::ofstream{marker} << "x";
    ::kill(::getpid(), SIGKILL);
  }
  return 7;
}
MPROC_ENTRY(die_once);

int always_sigkill(int) {
  ::kill(::getpid(), SIGKILL);
  return 0;
}
MPROC_ENTRY(always_sigkill);

int exit_three(int) { std::exit(3); }
MPROC_ENTRY(exit_three);

int init_value = 0;
void set_init_value(int v) { init_value = v; }
MPROC_ENTRY(set_init_value);
int read_init_value(int) { return init_value; }
MPROC_ENTRY(read_init_value);
void init_throws(int) { throw std::runtime_error("no database"); }
MPROC_ENTRY(init_throws);

int not_registered(int x) { return x; }

mproc::pool_options workers(std::size_t n) {
  mproc::pool_options o;
  o.workers = n;
  return o;
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

class pool_methods : public method_test {};

// ---- results ----------------------------------------------------------------------------

TEST_P(pool_methods, apply_map_starmap_and_imap_give_python_results) {
  mproc::pool pool{node, workers(2)};
  EXPECT_EQ(pool.apply(square, 7), 49);
  auto r = pool.apply_async(add, 2, 3);
  EXPECT_EQ(r.get(10s), 5);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  std::vector<int> expect;
  for (int x : iota(1000)) expect.push_back(x * x);
  EXPECT_EQ(pool.map(square, iota(1000)), expect);
  EXPECT_EQ(pool.map(square, iota(1000), 1), expect);
  EXPECT_EQ(pool.map(square, iota(1000), 7), expect);
  EXPECT_EQ(pool.starmap(add, std::vector<std::tuple<int, int>>{{1, 2}, {3, 4}}), (std::vector<int>{3, 7}));
  std::vector<int> ordered;
  for (int v : pool.imap(square, iota(100), 3)) ordered.push_back(v);
  EXPECT_EQ(ordered, std::vector<int>(expect.begin(), expect.begin() + 100));
  std::multiset<int> unordered;
  for (int v : pool.imap_unordered(square, iota(100))) unordered.insert(v);
  EXPECT_EQ(unordered, std::multiset<int>(expect.begin(), expect.begin() + 100));
}

TEST_P(pool_methods, a_sigkilled_worker_is_replaced_and_its_task_retried) {
  mproc::pool pool{node, workers(2)};
  mproc::test::temp_dir dir;
  const std::string marker = (dir.path() / "died").string();
  EXPECT_EQ(pool.apply(die_once, marker), 7);
  EXPECT_TRUE(std::filesystem::exists(marker));
  EXPECT_EQ(pool.map(square, iota(100)).size(), 100u) << "the pool is still whole";
}

INSTANTIATE_TEST_SUITE_P(methods, pool_methods, mproc::test::all_start_methods(), mproc::test::method_name);

TEST(pool, empty_inputs_give_empty_results) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  EXPECT_TRUE(pool.starmap(add, std::vector<std::tuple<int, int>>{}).empty());
  EXPECT_FALSE(pool.imap(square, std::vector<int>{}).next().has_value());
}

TEST(pool, void_tasks_and_callbacks) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  pool.apply(nothing, 1);
  std::atomic<int> value{0};
  std::atomic<bool> failed{false};
  auto ok = pool.apply_async_then([&](int v) { value = v; }, [&](std::exception_ptr) { failed = true; }, square, 9);
  auto bad = pool.apply_async_then([&](int) {}, [&](std::exception_ptr) { failed = true; }, throw_on_negative, -1);
  ok.wait();
  bad.wait();
  EXPECT_EQ(value, 81);
  EXPECT_TRUE(failed);
}

TEST(pool, endless_input_is_read_ahead_only_a_little) {
  mproc::node node;
  mproc::pool pool{node, workers(2)};
  auto pulled = std::make_shared<std::atomic<int>>(0);
  auto counting = std::views::iota(0) | std::views::transform([pulled](int x) {
                    ++*pulled;
                    return x;
                  });
  auto results = pool.imap(square, counting);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(results.next(10s), i * i);
  std::this_thread::sleep_for(100ms);
  EXPECT_LT(pulled->load(), 50 + 20) << "read far ahead of the reader";
}

// ---- errors -----------------------------------------------------------------------------

TEST(pool, a_task_exception_reaches_the_caller_and_the_worker_lives_on) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  int pid = pool.apply(worker_pid, 0);
  try {
    pool.apply(throw_on_negative, -5);
    FAIL() << "no exception";
  } catch (const mproc::task_error& e) {
    EXPECT_EQ(e.code(), errc::task_failed);
    EXPECT_EQ(e.exception().type, "std::invalid_argument");
    EXPECT_EQ(e.exception().message, "negative: -5");
  }
  EXPECT_EQ(pool.apply(worker_pid, 0), pid) << "the worker was replaced after a plain exception";
  try {
    pool.map(throw_on_negative, std::vector<int>{1, 2, -3, 4}, 1);
    FAIL() << "no exception";
  } catch (const mproc::task_error& e) {
    EXPECT_EQ(e.exception().message, "negative: -3");
  }
  std::vector<int> got;
  auto it = pool.imap(throw_on_negative, std::vector<int>{1, 2, -3, 4});
  EXPECT_EQ(it.next(), 1);
  EXPECT_EQ(it.next(), 2);
  EXPECT_THROW(it.next(), mproc::task_error);
}

TEST(pool, a_worker_that_keeps_dying_fails_its_task_with_worker_lost) {
  mproc::node node;
  mproc::pool pool{node, workers(2)};
  try {
    pool.apply(always_sigkill, 0);
    FAIL() << "no error";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::worker_lost);
    EXPECT_NE(std::string{e.what()}.find("signal 9"), std::string::npos) << e.what();
  }
  mproc::pool_options no_retry = workers(1);
  no_retry.retries = 0;
  mproc::pool once{node, no_retry};
  try {
    once.apply(exit_three, 0);
    FAIL() << "no error";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::worker_lost);
    EXPECT_NE(std::string{e.what()}.find("exit code 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.apply(square, 3), 9);
  EXPECT_EQ(once.apply(square, 4), 16);
}

TEST(pool, get_with_a_timeout_and_an_unregistered_function) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  auto slow = pool.apply_async(sleep_ms, 2000);
  auto t0 = std::chrono::steady_clock::now();
  try {
    slow.get(100ms);
    FAIL() << "no timeout";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::timeout);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_THROW(slow.successful(), mproc::error);  // not ready: Python's ValueError
  try {
    pool.apply(not_registered, 1);
    FAIL() << "an unregistered function ran";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::unknown_entry);
  }
}

// ---- workers ----------------------------------------------------------------------------

TEST(pool, initializer_runs_in_every_worker_and_its_failure_fails_construction) {
  mproc::node node;
  mproc::pool_options o = workers(2);
  o.initializer(set_init_value, 42);
  mproc::pool pool{node, o};
  EXPECT_EQ(pool.map(read_init_value, iota(8), 1), std::vector<int>(8, 42));
  mproc::pool_options bad = workers(2);
  bad.initializer(init_throws, 0);
  try {
    mproc::pool broken{node, bad};
    FAIL() << "the pool started although its initializer threw";
  } catch (const mproc::task_error& e) {
    EXPECT_EQ(e.exception().message, "no database");
  }
}

TEST(pool, maxtasksperchild_replaces_workers) {
  mproc::node node;
  mproc::pool_options o = workers(1);
  o.maxtasksperchild = 1;
  mproc::pool pool{node, o};
  auto pids = pool.map(worker_pid, iota(4), 1);
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 4u);
}

// ---- lifetime ---------------------------------------------------------------------------

TEST(pool, close_then_join_finishes_the_work_and_refuses_more) {
  mproc::node node;
  mproc::pool pool{node, workers(2)};
  try {
    pool.join();
    FAIL() << "join before close";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::invalid_argument);
  }
  std::vector<mproc::async_result<int>> rs;
  for (int i = 0; i < 6; ++i) rs.push_back(pool.apply_async(sleep_ms, 50));
  pool.close();
  try {
    pool.apply_async(square, 1);
    FAIL() << "submitted after close";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::closed);
  }
  EXPECT_TRUE(pool.join(20s));
  for (auto& r : rs) EXPECT_EQ(r.get(0s), 50);
  EXPECT_TRUE(mproc::test::zombie_children(::getpid()).empty());
}

TEST(pool, terminate_returns_promptly_and_fails_unfinished_tasks) {
  mproc::node node;
  mproc::pool pool{node, workers(2)};
  auto long_task = pool.apply_async(sleep_ms, 30000);
  std::this_thread::sleep_for(100ms);
  auto t0 = std::chrono::steady_clock::now();
  pool.terminate();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  try {
    long_task.get(5s);
    FAIL() << "a terminated task succeeded";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::closed);
  }
  EXPECT_TRUE(pool.join(5s));
}

}  // namespace

namespace {

/// About 10 µs of work, so that one map of 100k tasks (about half a second on two workers)
/// usually takes all fifty shots.
std::int64_t busy_identity(std::int64_t x) {
  volatile std::int64_t sink = 0;
  for (int i = 0; i < 10000; ++i) sink = sink + i;
  return x;
}
MPROC_ENTRY(busy_identity);

// Item 9 of the pool issue: a map of 100k tasks while 50 workers are SIGKILLed at random
// completes with every result correct and no hang.
TEST(pool_chaos, a_map_survives_fifty_sigkilled_workers) {
  mproc::node node;
  mproc::test::guard watchdog{120s};
  mproc::pool_options o;
  o.workers = 2;
  o.retries = 100;  // the same chunk may be shot more than once
  mproc::pool pool{node, o};
  std::vector<std::int64_t> inputs(100000);
  std::iota(inputs.begin(), inputs.end(), 0);
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread shooter{[&] {
    std::mt19937 rng{12345};
    while (!done && kills < 50) {
      auto children = node.active_children();
      if (!children.empty()) {
        pid_t victim = children[std::uniform_int_distribution<std::size_t>{0, children.size() - 1}(rng)];
        if (victim != node.forkserver_pid() && ::kill(victim, SIGKILL) == 0) ++kills;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>{1, 8}(rng)));
    }
  }};
  std::vector<std::int64_t> got;
  std::exception_ptr failure;
  int maps = 0;
  try {
    while (kills < 50) {  // keep the pool busy until every shot was fired
      got = pool.map(busy_identity, inputs, 50);
      ASSERT_EQ(got, inputs);
      ++maps;
    }
  } catch (...) {
    failure = std::current_exception();
  }
  done = true;
  shooter.join();
  if (failure) std::rethrow_exception(failure);
  EXPECT_GE(kills.load(), 50);
  std::printf("%d maps of 100k tasks under %d SIGKILLs\n", maps, kills.load());
  EXPECT_EQ(pool.map(square, iota(10)).size(), 10u) << "the pool is whole afterwards";
}

}  // namespace

namespace {

/// A task that runs a pool of its own (in the worker process, on that process's node).
std::int64_t sum_of_squares_in_a_nested_pool(int n) {
  mproc::pool inner{mproc::node::current(), 2};
  auto squares = inner.map(square, iota(n));
  return std::accumulate(squares.begin(), squares.end(), std::int64_t{0});
}
MPROC_ENTRY(sum_of_squares_in_a_nested_pool);

TEST_P(pool_methods, a_task_can_run_a_pool_of_its_own) {
  mproc::pool pool{node, workers(2)};
  auto results = pool.map(sum_of_squares_in_a_nested_pool, std::vector<int>{10, 100}, 1);
  EXPECT_EQ(results, (std::vector<std::int64_t>{285, 328350}));
}

}  // namespace

namespace {

TEST(pool, a_task_not_yet_started_can_be_cancelled) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  auto running = pool.apply_async(sleep_ms, 300);
  std::this_thread::sleep_for(50ms);       // the only worker is busy
  auto queued = pool.apply_async(square, 5);  // waits for it
  EXPECT_TRUE(queued.cancel());
  try {
    queued.get(1s);
    FAIL() << "a cancelled task ran";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::cancelled);
  }
  EXPECT_FALSE(running.cancel()) << "a running task cannot be cancelled";
  EXPECT_EQ(running.get(5s), 300);
  EXPECT_FALSE(queued.cancel());
  EXPECT_EQ(pool.apply(square, 6), 36);
}

TEST(pool, a_fail_fast_map_reports_the_first_failure_without_waiting_for_the_rest) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  // The failing item comes first; the rest would take 20 × 100 ms.
  std::vector<int> inputs{-1};
  for (int i = 0; i < 20; ++i) inputs.push_back(100);
  auto t0 = std::chrono::steady_clock::now();
  try {
    pool.map(sleep_or_throw, inputs, 1, true);
    FAIL() << "no error";
  } catch (const mproc::task_error& e) {
    EXPECT_EQ(e.exception().message, "negative: -1");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "waited for chunks after the failure";
  EXPECT_EQ(pool.apply(square, 2), 4) << "the pool goes on";
}

}  // namespace

namespace {

TEST(pool_progress, a_callback_sees_every_item_of_a_map) {
  mproc::node node;
  mproc::pool_options o = workers(2);
  std::vector<mproc::map_progress> seen;  // the manager thread calls, one at a time
  o.on_progress = [&](const mproc::map_progress& p) { seen.push_back(p); };
  mproc::pool pool{node, o};
  pool.map(square, iota(100), 10);
  ASSERT_EQ(seen.size(), 10u);
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i].done, seen[i - 1].done);
  EXPECT_EQ(seen.back().done, 100u);
  EXPECT_EQ(seen.back().total, 100u);
  EXPECT_EQ(seen.back().eta, 0.0);
}

TEST(pool_progress, a_long_map_shows_a_line_when_stdout_is_a_terminal) {
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  std::fflush(stdout);
  int saved = ::dup(STDOUT_FILENO);
  ::dup2(slave, STDOUT_FILENO);
  pool.map(sleep_ms, std::vector<int>(12, 100), 1);  // 1.2 s: over the one-second threshold
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(slave);
  std::string shown;
  char buf[4096];
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;) shown.append(buf, static_cast<std::size_t>(n));
  ::close(master);
  EXPECT_NE(shown.find("map: 12/12 items"), std::string::npos) << shown;
}

}  // namespace

/// A result that encodes fine but refuses to decode when it holds 13.
struct fragile {
  int v = 0;
};
template <>
struct mproc::codec<fragile> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const fragile& f) { mproc::encode(w, f.v); }
  static void decode(reader& r, fragile& f) {
    mproc::decode(r, f.v);
    if (f.v == 13) throw mproc::error(mproc::errc::bad_message, "fragile 13");
  }
};

namespace {

fragile make_fragile(int v) { return fragile{v}; }
MPROC_ENTRY(make_fragile);

int throw_an_int(int) { throw 42; }
MPROC_ENTRY(throw_an_int);

TEST(pool, foreign_exceptions_and_undecodable_results_are_outcomes_too) {
  mproc::node node;
  mproc::pool pool{node, workers(1)};
  try {
    pool.apply(throw_an_int, 0);
    FAIL() << "no error";
  } catch (const mproc::task_error& e) {
    EXPECT_EQ(e.exception().type, "int");
    EXPECT_EQ(e.exception().message, "");
  }
  EXPECT_EQ(pool.apply(make_fragile, 12).v, 12);
  try {
    pool.apply(make_fragile, 13);
    FAIL() << "an undecodable result was delivered";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::bad_message);
  }
  try {
    pool.map(make_fragile, std::vector<int>{1, 13, 2});
    FAIL() << "an undecodable result was delivered";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::bad_message);
  }
  EXPECT_EQ(pool.apply(square, 3), 9);
}

}  // namespace
