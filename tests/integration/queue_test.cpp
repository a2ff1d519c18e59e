// mproc::queue<T> across real processes: delivery, order, exactly-once, timeouts on the
// monotonic clock, maxsize, close, task_done/join, handles in messages, owner death, bad input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/securebits.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mproc/mproc.hpp>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::test::method_test;

namespace {

// ---- child entry points -----------------------------------------------------------------

void produce_range(mproc::queue<std::int64_t> q, std::int64_t from, std::int64_t to) {
  for (auto i = from; i < to; ++i) q.put(i);
}
MPROC_ENTRY(produce_range);

/// Gets n values, checks they are consecutive from `from`, reports their sum.
void consume_sum(mproc::queue<std::int64_t> q, std::int64_t n, mproc::queue<std::int64_t> result) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += q.get();
  result.put(sum);
}
MPROC_ENTRY(consume_sum);

struct tagged {
  std::int32_t producer;
  std::int64_t seq;
};

void produce_tagged(mproc::queue<tagged> q, std::int32_t producer, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) q.put(tagged{producer, i});
}
MPROC_ENTRY(produce_tagged);

/// Moves tagged values to `out` until the input is closed and drained.
void forward_until_closed(mproc::queue<tagged> in, mproc::queue<std::vector<tagged>> out) {
  std::vector<tagged> got;
  for (;;) {
    std::error_code ec;
    auto v = in.get(ec);
    if (ec == errc::closed) break;
    if (ec) std::_Exit(10);
    got.push_back(*v);
  }
  out.put(got);
}
MPROC_ENTRY(forward_until_closed);

/// Exit code: 0 when a put with a timeout on a full queue fails with errc::full in time.
void put_on_full(mproc::queue<int> q) {
  auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  q.put(1, 100ms, ec);
  auto took = std::chrono::steady_clock::now() - t0;
  if (ec != errc::full) std::_Exit(2);
  if (took < 100ms || took > 5s) std::_Exit(3);
  if (q.try_put(1)) std::_Exit(4);
}
MPROC_ENTRY(put_on_full);

void put_one(mproc::queue<int> q, int v) { q.put(v); }
MPROC_ENTRY(put_one);

/// Blocks in get until the queue is closed; exit 0 when that get reports errc::closed.
void get_until_closed(mproc::queue<int> q, mproc::queue<int> ready) {
  ready.put(1);
  std::error_code ec;
  auto v = q.get(ec);
  std::_Exit(ec == errc::closed && !v ? 0 : 5);
}
MPROC_ENTRY(get_until_closed);

void put_after_close(mproc::queue<int> q) {
  std::error_code ec;
  q.put(1, ec);
  std::_Exit(ec == errc::closed ? 0 : 6);
}
MPROC_ENTRY(put_after_close);

void get_and_task_done(mproc::queue<int> q, int n) {
  for (int i = 0; i < n; ++i) {
    q.get();
    std::this_thread::sleep_for(1ms);
    q.task_done();
  }
}
MPROC_ENTRY(get_and_task_done);

/// Gets one value and returns: the handle goes away with messages it may have prefetched.
void get_one_and_leave(mproc::queue<std::int64_t> q, mproc::queue<std::int64_t> result) { result.put(q.get()); }
MPROC_ENTRY(get_one_and_leave);

/// Reads until no writer is left; reports how many values it got and their sum.
void read_to_the_end(mproc::queue_reader<std::int64_t> q, mproc::queue<std::int64_t> result) {
  std::int64_t n = 0, sum = 0;
  for (;;) {
    std::error_code ec;
    auto v = q.get(20s, ec);
    if (ec == errc::end_of_stream) break;
    if (ec) std::_Exit(8);  // a timeout here would be a hang in real life
    ++n;
    sum += *v;
  }
  result.put(n);
  result.put(sum);
}
MPROC_ENTRY(read_to_the_end);

/// Puts n values, then dies by SIGKILL (a crashed producer).
void produce_then_crash(mproc::queue<std::int64_t> q, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) q.put(i);
  std::error_code ec;
  q.qsize(ec);  // a round trip: the values are in the queue before we die
  ::kill(::getpid(), SIGKILL);
}
MPROC_ENTRY(produce_then_crash);

/// Takes n values as fast as it can (its batches grow meanwhile), then dies by SIGKILL with the
/// rest of its last batch unconsumed.
void take_then_die(mproc::queue<std::int64_t> q, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (q.get() != i) std::_Exit(9);
  ::kill(::getpid(), SIGKILL);
}
MPROC_ENTRY(take_then_die);

/// Makes a queue owned by this child, sends its handle to the parent inside a message, fills
/// it, then waits for the word to exit.
void own_a_queue(mproc::queue<mproc::queue<std::string>> mailbox, mproc::queue<int> go) {
  mproc::queue<std::string> mine{mproc::node::current()};
  mine.put("from the child's own queue");
  mailbox.put(mine);
  go.get();
}
MPROC_ENTRY(own_a_queue);

struct unencodable {
  int x = 0;
};

/// Its codec throws errc::timeout on decoding when v[0] < 0 (a codec's own error, not a late body).
struct timing_out {
  std::vector<int> v;
};

}  // namespace

template <>
struct mproc::codec<timing_out> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const timing_out& t) { mproc::encode(w, t.v); }
  static void decode(reader& r, timing_out& t) {
    mproc::decode(r, t.v);
    if (!t.v.empty() && t.v[0] < 0) throw mproc::error(errc::timeout, "the codec's own timeout");
  }
};

namespace {

/// A small and a large (a body of its own) message whose codec times out, each followed by one
/// that decodes.
void put_timing_out(mproc::queue<timing_out> q) {
  std::vector<int> large(600000, 7);  // 2.4 MB
  large[0] = -1;
  q.put(timing_out{{-1}});
  q.put(timing_out{{2}});
  q.put(timing_out{large});
  q.put(timing_out{{3}});
}
MPROC_ENTRY(put_timing_out);

}  // namespace

template <>
struct mproc::codec<unencodable> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const unencodable& u) {
    if (u.x < 0) throw mproc::error(errc::invalid_argument, "negative values cannot be encoded");
    w.raw(&u.x, sizeof u.x);
  }
  static void decode(reader& r, unencodable& u) { r.raw(&u.x, sizeof u.x); }
};

namespace {

// ---- in the owner process ---------------------------------------------------------------

TEST(queue_local, fifo_and_exact_qsize) {
  mproc::node node;
  auto q = node.make_queue<std::string>();
  EXPECT_TRUE(q.empty());
  for (auto s : {"A", "B", "C"}) q.put(s);
  EXPECT_EQ(q.qsize(), 3u);
  EXPECT_EQ(q.get(), "A");
  EXPECT_EQ(q.get(), "B");
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), "C");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.maxsize(), 0u);
  EXPECT_FALSE(q.full());
}

TEST(queue_local, timed_get_on_empty_waits_then_reports_empty) {
  mproc::node node;
  auto q = node.make_queue<int>();
  EXPECT_EQ(q.try_get(), std::nullopt);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(q.get_for(50ms), std::nullopt);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 2s);
  try {
    q.get(20ms);
    FAIL() << "get(timeout) on an empty queue returned";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::empty);
  }
  std::error_code ec;
  EXPECT_EQ(q.get(1ms, ec), std::nullopt);
  EXPECT_EQ(ec, errc::empty);
}

TEST(queue_local, bounded_put_blocks_then_fails_with_full) {
  mproc::node node;
  auto q = node.make_queue<int>(2);
  q.put(1);
  EXPECT_TRUE(q.try_put(2));
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.try_put(3));
  auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  q.put(3, 50ms, ec);
  EXPECT_EQ(ec, errc::full);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  // A blocked put proceeds as soon as a get makes room.
  std::thread getter{[&] {
    std::this_thread::sleep_for(30ms);
    q.get();
  }};
  q.put(3, 5s);
  getter.join();
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get(), 2);
  EXPECT_EQ(q.get(), 3);
}

TEST(queue_local, close_fails_puts_and_drains_then_reports_closed) {
  mproc::node node;
  auto q = node.make_queue<int>();
  q.put(1);
  q.put(2);
  q.close();
  std::error_code ec;
  q.put(3, ec);
  EXPECT_EQ(ec, errc::closed);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 2);
  EXPECT_EQ(q.get(ec), std::nullopt);
  EXPECT_EQ(ec, errc::closed);
  q.close();  // twice is fine
}

TEST(queue_local, close_wakes_a_blocked_getter) {
  mproc::node node;
  auto q = node.make_queue<int>();
  std::thread closer{[&] {
    std::this_thread::sleep_for(30ms);
    q.close();
  }};
  std::error_code ec;
  q.get(ec);
  closer.join();
  EXPECT_EQ(ec, errc::closed);
}

TEST(queue_local, task_done_and_join) {
  mproc::node node;
  auto q = node.make_queue<int>();
  q.join();  // nothing put: returns at once
  q.put(1);
  q.put(2);
  EXPECT_FALSE(q.join(20ms));
  q.get();
  q.task_done();
  EXPECT_FALSE(q.join(10ms));
  q.get();
  q.task_done();
  EXPECT_TRUE(q.join(1s));
  std::error_code ec;
  q.task_done(ec);
  EXPECT_EQ(ec, errc::invalid_argument);
}

template <class Q>
concept can_put = requires(Q q) { q.put(1); };
static_assert(can_put<mproc::queue<int>> && !can_put<mproc::queue_reader<int>>,
              "a queue_reader must not compile a put");

TEST(queue_local, reader_sees_end_of_stream_once_no_writer_is_left) {
  mproc::node node;
  auto q = node.make_queue<int>();
  mproc::queue_reader<int> r = q;  // any handle converts to a reader
  std::error_code ec;
  EXPECT_EQ(r.get(10ms, ec), std::nullopt);  // a writer exists: nothing yet is just "empty"...
  EXPECT_EQ(ec, errc::empty);
  q.put(1);
  q.put(2);
  EXPECT_EQ(r.get(), 1);
  auto copy = q;
  q = {};
  EXPECT_EQ(r.get(), 2);
  EXPECT_EQ(r.get(10ms, ec), std::nullopt);
  EXPECT_EQ(ec, errc::empty);  // ...the copy is still a writer
  copy = {};
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(r.get(ec), std::nullopt);  // no writer left: at once, not after a timeout
  EXPECT_EQ(ec, errc::end_of_stream);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(mproc::wait({r}, 0ms), (std::vector<std::size_t>{0}));  // and it is "ready"
}

TEST(queue_local, a_reader_does_not_become_a_writer_on_arrival) {
  mproc::node node;
  auto q = node.make_queue<int>();
  auto bytes = mproc::to_bytes(q.reader());
  try {
    mproc::from_bytes<mproc::queue<int>>(bytes.data(), bytes.size());
    FAIL() << "a read-only handle became one that can put";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::wrong_type);
  }
  auto r = mproc::from_bytes<mproc::queue_reader<int>>(bytes.data(), bytes.size());
  q.put(3);
  EXPECT_EQ(r.get(), 3);
}

TEST(queue_local, encoding_error_is_reported_by_put_and_stores_nothing) {
  mproc::node node;
  auto q = node.make_queue<unencodable>();
  EXPECT_THROW(q.put(unencodable{-1}), mproc::error);
  EXPECT_EQ(q.qsize(), 0u);
  q.put(unencodable{7});
  EXPECT_EQ(q.get().x, 7);
}

TEST(queue_local, empty_handle_is_invalid_argument) {
  mproc::queue<int> q;
  EXPECT_FALSE(q.valid());
  std::error_code ec;
  q.put(1, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(q.get(), mproc::error);
  EXPECT_THROW(mproc::to_bytes(q), mproc::error);
}

TEST(queue_local, many_value_types_round_trip) {
  mproc::node node;
  auto q = node.make_queue<std::map<std::string, std::vector<std::optional<double>>>>();
  std::map<std::string, std::vector<std::optional<double>>> v{{"a", {1.5, std::nullopt}}, {"b", {}}};
  q.put(v);
  EXPECT_EQ(q.get(), v);
}

// ---- across processes, every start method -----------------------------------------------

class queue_test : public method_test {};

TEST_P(queue_test, child_producer_parent_consumer_in_order) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto p = start(produce_range, q, std::int64_t{0}, std::int64_t{100000});
  for (std::int64_t i = 0; i < 100000; ++i) ASSERT_EQ(q.get(10s), i);
  EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(q.qsize(), 0u);
}

TEST_P(queue_test, parent_producer_child_consumer) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto result = node.make_queue<std::int64_t>();
  auto c = start(consume_sum, q, std::int64_t{50000}, result);
  for (std::int64_t i = 0; i < 50000; ++i) q.put(i);
  EXPECT_EQ(result.get(20s), std::int64_t{50000} * 49999 / 2);
  EXPECT_EQ(finish(c), 0);
}

TEST_P(queue_test, child_to_child_through_the_owner) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto result = node.make_queue<std::int64_t>();
  auto c = start(consume_sum, q, std::int64_t{200000}, result);
  auto p = start(produce_range, q, std::int64_t{0}, std::int64_t{200000});
  EXPECT_EQ(result.get(30s), std::int64_t{200000} * 199999 / 2);
  EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(finish(c), 0);
}

TEST_P(queue_test, process_exiting_right_after_put_loses_nothing) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto p = start(produce_range, q, std::int64_t{0}, std::int64_t{300000});
  EXPECT_EQ(finish(p), 0);  // it exited; everything it put must be here already
  EXPECT_EQ(q.qsize(), 300000u);
  EXPECT_EQ(q.get(), 0);
}

TEST_P(queue_test, many_producers_many_consumers_exactly_once) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  constexpr int producers = 4, consumers = 4;
  constexpr std::int64_t each = 20000;
  auto q = node.make_queue<tagged>();
  auto out = node.make_queue<std::vector<tagged>>();
  std::vector<mproc::process> cs, ps;
  for (int i = 0; i < consumers; ++i) cs.push_back(start(forward_until_closed, q, out));
  for (int i = 0; i < producers; ++i) ps.push_back(start(produce_tagged, q, i, each));
  for (auto& p : ps) ASSERT_EQ(finish(p), 0);
  q.close();
  std::vector<std::vector<std::int64_t>> seen(producers);
  for (int i = 0; i < consumers; ++i) {
    auto got = out.get(30s);
    // Per consumer, each producer's values arrive in the order they were put.
    std::vector<std::int64_t> last(producers, -1);
    for (auto& t : got) {
      ASSERT_GE(t.producer, 0);
      ASSERT_LT(t.producer, producers);
      EXPECT_GT(t.seq, last[t.producer]);
      last[t.producer] = t.seq;
      seen[t.producer].push_back(t.seq);
    }
  }
  for (auto& c : cs) EXPECT_EQ(finish(c), 0);
  for (int p = 0; p < producers; ++p) {
    auto& s = seen[p];
    std::sort(s.begin(), s.end());
    ASSERT_EQ(s.size(), static_cast<std::size_t>(each)) << "producer " << p;
    for (std::int64_t i = 0; i < each; ++i) ASSERT_EQ(s[i], i) << "producer " << p;
  }
}

TEST_P(queue_test, bounded_queue_in_a_child_reports_full_in_time) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<int>(1);
  q.put(0);
  EXPECT_EQ(run_child(put_on_full, q), 0);
  // Room again: a child's put goes through.
  EXPECT_EQ(q.get(), 0);
  EXPECT_EQ(run_child(put_one, q, 42), 0);
  EXPECT_EQ(q.get(5s), 42);
}

TEST_P(queue_test, close_wakes_a_getter_in_another_process_and_fails_its_puts) {
  auto q = node.make_queue<int>();
  auto ready = node.make_queue<int>();
  auto g = start(get_until_closed, q, ready);
  ready.get(10s);
  std::this_thread::sleep_for(20ms);
  q.close();
  EXPECT_EQ(finish(g), 0);
  EXPECT_EQ(run_child(put_after_close, q), 0);
}

TEST_P(queue_test, join_waits_for_task_done_in_other_processes) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<int>();
  for (int i = 0; i < 20; ++i) q.put(i);
  auto w = start(get_and_task_done, q, 20);
  EXPECT_TRUE(q.join(20s));
  EXPECT_EQ(finish(w), 0);
}

TEST_P(queue_test, handle_dropped_with_prefetched_messages_gives_them_back) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto result = node.make_queue<std::int64_t>();
  for (std::int64_t i = 0; i < 1000; ++i) q.put(i);
  EXPECT_EQ(run_child(get_one_and_leave, q, result), 0);
  EXPECT_EQ(result.get(5s), 0);
  EXPECT_EQ(q.qsize(), 999u);  // exact, and nothing was lost
  for (std::int64_t i = 1; i < 1000; ++i) ASSERT_EQ(q.get(), i);
}

TEST_P(queue_test, consumer_killed_with_a_prefetched_batch_loses_nothing) {
  auto q = node.make_queue<std::int64_t>();
  for (std::int64_t i = 0; i < 5000; ++i) q.put(i);
  auto c = start(take_then_die, q, std::int64_t{100});
  EXPECT_EQ(finish(c), -SIGKILL);
  // It took exactly 0..99; whatever it had fetched beyond that is back, at the front, in order.
  EXPECT_TRUE(mproc::test::eventually([&] { return q.qsize() == 4900u; }));
  EXPECT_EQ(q.qsize(), 4900u);
  for (std::int64_t i = 100; i < 5000; ++i) ASSERT_EQ(q.get(1s), i);
}

TEST_P(queue_test, reader_gets_everything_then_end_of_stream_when_the_producer_is_done) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto result = node.make_queue<std::int64_t>();
  auto c = start(read_to_the_end, q.reader(), result);
  auto p = start(produce_range, q, std::int64_t{0}, std::int64_t{20000});
  q = {};  // at once: the producer's handle is still on its way (a ticket keeps it counted)
  EXPECT_EQ(result.get(30s), 20000);
  EXPECT_EQ(result.get(30s), std::int64_t{20000} * 19999 / 2);
  EXPECT_EQ(finish(p), 0);
  EXPECT_EQ(finish(c), 0);
}

TEST_P(queue_test, a_crashed_producer_ends_the_stream_instead_of_hanging) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<std::int64_t>();
  auto result = node.make_queue<std::int64_t>();
  auto c = start(read_to_the_end, q.reader(), result);
  auto p = start(produce_then_crash, q, std::int64_t{500});
  q = {};
  EXPECT_EQ(finish(p), -SIGKILL);
  EXPECT_EQ(result.get(30s), 500);
  EXPECT_EQ(finish(c), 0);
}

TEST_P(queue_test, handle_inside_a_message_and_owner_death) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto mailbox = node.make_queue<mproc::queue<std::string>>();
  auto go = node.make_queue<int>();
  auto child = start(own_a_queue, mailbox, go);
  auto theirs = mailbox.get(10s);  // a handle to a queue owned by the child
  EXPECT_EQ(theirs.get(10s), "from the child's own queue");
  go.put(1);
  EXPECT_EQ(finish(child), 0);
  std::error_code ec;
  theirs.get(5s, ec);  // its owner is gone
  EXPECT_EQ(ec, errc::node_closed);
}

INSTANTIATE_TEST_SUITE_P(all_methods, queue_test, mproc::test::all_start_methods(), mproc::test::method_name);

// ---- wrong types and bad peers -----------------------------------------------------------

TEST(queue_errors, a_codec_that_throws_timeout_is_bad_message_and_the_next_message_follows) {
  // errc::timeout from a take means "a large body is still being written: not yet". A codec's
  // own timeout was taken for that: get_for and try_get dropped the small message unseen, and
  // the large one stayed first for ever.
  mproc::node node;
  mproc::test::guard watchdog{30s};
  auto q = node.make_queue<timing_out>();
  auto producer = node.spawn(put_timing_out, q);
  watchdog.add(producer);
  ASSERT_TRUE(producer.join(20s));
  auto expect_bad_message = [&](const char* which) {
    try {
      auto v = q.get_for(5s);
      ADD_FAILURE() << which << ": get_for returned " << (v ? "a value" : "nothing");
    } catch (const mproc::error& e) {
      EXPECT_EQ(e.code(), errc::bad_message) << which << ": " << e.what();
    }
  };
  expect_bad_message("small");
  EXPECT_EQ(q.get_for(5s).value().v, std::vector<int>{2});
  expect_bad_message("large");
  EXPECT_EQ(q.get(5s).v, std::vector<int>{3});
  EXPECT_TRUE(q.empty());

  auto [a, b] = mproc::make_pipe<timing_out>();
  a.send(timing_out{{-1}});
  a.send(timing_out{{4}});
  try {
    b.recv_for(5s);
    ADD_FAILURE() << "pipe: recv_for returned";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::bad_message) << e.what();
  }
  EXPECT_EQ(b.recv_for(5s).value().v, std::vector<int>{4});
}

TEST(queue_errors, handle_decoded_as_another_type_is_wrong_type) {
  mproc::node node;
  auto q = node.make_queue<int>();
  auto bytes = mproc::to_bytes(q);
  try {
    mproc::from_bytes<mproc::queue<std::string>>(bytes.data(), bytes.size());
    FAIL() << "decoded a queue<int> handle as queue<std::string>";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::wrong_type);
  }
  // The owner checks the type too (a peer that lies in its token).
  auto token = q.token();
  std::error_code ec;
  token.type_id = mproc::detail::wire::type_id<std::string>();
  mproc::detail::open_queue(token, typeid(std::string), ec);
  EXPECT_EQ(ec, errc::wrong_type);
}

/// A raw connection to the owner's socket, for feeding it bad bytes.
int raw_connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// True when the peer closed the connection within `limit`.
bool closed_by_peer(int fd, std::chrono::milliseconds limit) {
  timeval tv{0, static_cast<suseconds_t>(std::chrono::microseconds(limit).count())};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

TEST(queue_errors, garbage_truncated_and_oversized_frames_close_that_peer_only) {
  mproc::node node;
  auto q = node.make_queue<int>();
  const std::string path = q.token().path;
  {  // garbage
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    std::string junk(100, 'x');
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), 100);
    EXPECT_TRUE(closed_by_peer(fd, 2000ms));
    ::close(fd);
  }
  {  // a header announcing an absurd payload
    int fd = raw_connect(path);
    mproc::detail::wire::header h{mproc::detail::wire::magic, mproc::detail::wire::version, 1, 0,
                                  std::uint64_t{1} << 62};
    ASSERT_EQ(::write(fd, &h, sizeof h), static_cast<ssize_t>(sizeof h));
    EXPECT_TRUE(closed_by_peer(fd, 2000ms));
    ::close(fd);
  }
  {  // a frame cut short by the peer's death
    int fd = raw_connect(path);
    mproc::detail::wire::header h{mproc::detail::wire::magic, mproc::detail::wire::version, 1, 0, 1000};
    ASSERT_EQ(::write(fd, &h, sizeof h), static_cast<ssize_t>(sizeof h));
    ::close(fd);
  }
  {  // a wrong protocol version
    int fd = raw_connect(path);
    mproc::detail::wire::header h{mproc::detail::wire::magic, 99, 1, 0, 0};
    ASSERT_EQ(::write(fd, &h, sizeof h), static_cast<ssize_t>(sizeof h));
    EXPECT_TRUE(closed_by_peer(fd, 2000ms));
    ::close(fd);
  }
  // The owner is unharmed and the queue works.
  q.put(5);
  EXPECT_EQ(q.get(1s), 5);
}

/// In a forked child: becomes uid 65534 (keeping root's capabilities, so the 0700 directory
/// and the 0600 socket do not stop it first), connects, and reads the owner's answer. Exit 0
/// when the owner refused it with access_denied; 10+ for other outcomes.
[[noreturn]] void connect_as_other_user(const std::string& path) {
  int dir_fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (dir_fd < 0) ::_exit(10);
  if (::prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) != 0) ::_exit(11);
  if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(12);
  int fd = raw_connect("/proc/self/fd/" + std::to_string(dir_fd));
  if (fd < 0) ::_exit(13);
  mproc::detail::wire::header h{};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::recv(fd, &h, sizeof h, MSG_WAITALL) != static_cast<ssize_t>(sizeof h)) ::_exit(14);
  if (h.kind != static_cast<std::uint16_t>(mproc::detail::wire::kind::refused) || h.length > 4096) ::_exit(15);
  std::vector<std::byte> payload(h.length);
  if (::recv(fd, payload.data(), payload.size(), MSG_WAITALL) != static_cast<ssize_t>(payload.size())) ::_exit(16);
  auto status = mproc::from_bytes<mproc::detail::wire::status_message>(payload.data(), payload.size());
  ::_exit(status.code == static_cast<std::int32_t>(errc::access_denied) ? 0 : 17);
}

TEST(queue_security, peer_of_another_user_is_refused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to become another user in a child";
  mproc::node node;
  auto q = node.make_queue<int>();
  const std::string path = q.token().path;
  pid_t pid = ::fork();  // only syscalls in the child: safe in this threaded process
  ASSERT_GE(pid, 0);
  if (pid == 0) connect_as_other_user(path);
  mproc::test::guard watchdog{30s};
  watchdog.add(pid);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10+: see connect_as_other_user";
  q.put(1);  // the owner goes on serving its own user
  EXPECT_EQ(q.get(1s), 1);
}

TEST(queue_security, socket_is_private) {
  mproc::node node;
  auto q = node.make_queue<int>();
  struct stat st{};
  ASSERT_EQ(::stat(q.token().path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(node.runtime_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

}  // namespace
