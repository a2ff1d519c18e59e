// A large message whose producer is slow to fill its body (framework/src/mailbox/body_pool.hpp:
// the consumer decodes a pooled body while it is written). Real processes: the producer's copy
// stops half-way, after the frame went out, until the test lets it go on (or it gives up: then
// the test fails). A timed get keeps its deadline and the message; a get inside such a decode
// holds up neither the puts of its process nor the replies its I/O thread files, and an
// asynchronous get started meanwhile is served once it is done; an asynchronous get waits for
// such a body without spinning; a consumer killed inside such a decode leaves the message
// whole to the next get.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mproc/async.hpp>
#include <mproc/mproc.hpp>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

using bytes = std::vector<std::byte>;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t blob_size = std::size_t{8} << 20;

/// True in a consumer once its codec began to decode a blob (the body is half there then).
std::atomic<bool> decoding_started{false};

/// A large value that is a vector to its consumer, and to its producer any memory it points to
/// (the bytes go straight from there into the message's body, after the frame went out).
struct slow_blob {
  bytes value;
  std::span<const std::byte> source;  // sent instead of `value` when set
};

}  // namespace

template <>
struct mproc::codec<slow_blob> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const slow_blob& b) {
    auto s = b.source.empty() ? std::span<const std::byte>{b.value} : b.source;
    w.size(s.size());
    w.raw(s.data(), s.size());
  }
  static void decode(reader& r, slow_blob& b) {
    decoding_started.store(true);
    mproc::decode(r, b.value);
  }
};

namespace {

bytes pattern(std::size_t n, unsigned seed) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 131 + seed * 7) & 0xff);
  return b;
}

void touch(const std::string& path) { std::fclose(std::fopen(path.c_str(), "w")); }

/// A file name for a test's go-ahead, removed when the test ends.
struct go_ahead_file {
  std::string path = testing::TempDir() + "mproc-go-ahead-" + std::to_string(::getpid()) + "-" +
                     testing::UnitTest::GetInstance()->current_test_info()->name();
  go_ahead_file() { std::filesystem::remove(path); }
  ~go_ahead_file() { std::filesystem::remove(path); }
};

// ---- the slow producer -----------------------------------------------------------------

/// Puts pattern(blob_size, seed) with the copy into its body stopped half-way until
/// `go_ahead` exists. Exits 9 when it gave up waiting for that.
void put_stalled(mproc::queue<slow_blob> q, std::string go_ahead, unsigned seed) {
  void* p = ::mmap(nullptr, blob_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::_Exit(2);
  auto value = pattern(blob_size, seed);
  std::memcpy(p, value.data(), blob_size);
  // Page-aligned, so exactly the second half stalls.
  if (!mproc::test::stall_reads_until(static_cast<std::byte*>(p) + blob_size / 2, blob_size / 2, go_ahead))
    std::_Exit(3);
  q.put(slow_blob{{}, {static_cast<const std::byte*>(p), blob_size}});
  if (mproc::test::stall_gave_up()) std::_Exit(9);
}
MPROC_ENTRY(put_stalled);

// ---- consumers in another process ---------------------------------------------------------

/// What went wrong, or "ok".
using report = mproc::queue<std::string>;

/// With its message's body half there: a timed get times out on time, and another thread's
/// get then has the message whole.
void time_out_then_take(mproc::queue<slow_blob> q, std::string go_ahead, report out) {
  if (!mproc::test::eventually([&] { return q.qsize() == 1; }, 20000ms)) return out.put("the message never came");
  std::error_code ec;
  auto start = clock_type::now();
  auto early = q.get(300ms, ec);
  auto took = clock_type::now() - start;
  touch(go_ahead);
  if (ec != errc::timeout || early) return out.put("the first get did not time out: " + ec.message());
  if (took > 800ms) return out.put("the timeout came late");
  slow_blob whole;
  std::thread other{[&] { whole = q.get(20s); }};
  other.join();
  out.put(whole.value == pattern(blob_size, 5) ? "ok" : "the message is not intact");
}
MPROC_ENTRY(time_out_then_take);

/// While one thread decodes the half-written message, another puts to the same queue and asks
/// for its size (a reply the I/O thread files), and starts an asynchronous get (its watch comes
/// during the decode: the small message must still come to it); then lets the producer go on.
void put_during_a_decode(mproc::queue<slow_blob> q, std::string go_ahead, report out) {
  decoding_started = false;  // a forked process inherits the test's
  slow_blob large;
  std::thread decoding{[&] { large = q.get(20s); }};
  bool started = mproc::test::eventually([] { return decoding_started.load(); }, 20000ms);
  // With the queue locked during the decode, these wait until the producer gave up (10 s).
  q.put(slow_blob{pattern(100, 6), {}});
  std::size_t size = q.qsize();
  boost::asio::io_context io;
  std::error_code async_ec = make_error_code(errc::timeout);
  slow_blob small;
  mproc::async_get(io.get_executor(), q, [&](std::error_code ec, slow_blob v) {
    async_ec = ec;
    small = std::move(v);
  });
  touch(go_ahead);
  decoding.join();
  io.run_for(20s);
  if (!started) return out.put("the decode never started");
  if (size != 1) return out.put("qsize was " + std::to_string(size) + ", not 1");
  if (large.value != pattern(blob_size, 5)) return out.put("the large message is not intact");
  if (async_ec) return out.put("the asynchronous get failed: " + async_ec.message());
  out.put(small.value == pattern(100, 6) ? "ok" : "the small message is not intact");
}
MPROC_ENTRY(put_during_a_decode);

/// Gets the message, and says "decoding" once its codec began (the body is half there then):
/// the test kills it meanwhile.
void decode_until_killed(mproc::queue<slow_blob> q, report out) {
  decoding_started = false;  // a forked process inherits the test's
  std::thread tell{[&] {
    if (mproc::test::eventually([] { return decoding_started.load(); }, 20000ms)) out.put("decoding");
  }};
  auto v = q.get(20s);
  tell.join();
  out.put("the get returned: it was not killed");
}
MPROC_ENTRY(decode_until_killed);

/// A queue of this process holding one message whose producer stalls half-way through its body
/// until the test touches `go`.
class queue_slow_body_here : public testing::Test {
 protected:
  mproc::node node;
  mproc::test::guard watchdog{30s};
  go_ahead_file go;
  mproc::queue<slow_blob> q = node.make_queue<slow_blob>();
  mproc::process producer;

  void SetUp() override {
    producer = node.spawn(put_stalled, q, go.path, 5u);
    watchdog.add(producer);
    ASSERT_TRUE(mproc::test::eventually([&] { return q.qsize() == 1; }, 20000ms));
  }
  /// After the go-ahead: the producer ended well, let go by the file, not by giving up.
  void expect_producer_let_go() {
    ASSERT_TRUE(producer.join(20s));
    EXPECT_EQ(producer.exitcode(), 0) << "the producer was let go only when it gave up waiting";
  }
};

TEST_F(queue_slow_body_here, a_local_get_times_out_on_a_half_written_body_and_the_next_get_has_it_whole) {
  std::error_code ec;
  auto start = clock_type::now();
  auto early = q.get(300ms, ec);
  auto took = clock_type::now() - start;
  EXPECT_EQ(ec, errc::timeout) << ec.message();
  EXPECT_FALSE(early);
  EXPECT_LT(took, 800ms);
  EXPECT_EQ(q.qsize(), 1u) << "the message did not stay in the queue";
  EXPECT_FALSE(q.get_for(50ms)) << "get_for: a message not all there is none yet";
  touch(go.path);
  EXPECT_EQ(q.get(20s).value, pattern(blob_size, 5));
  expect_producer_let_go();
}

/// CPU time this thread has used.
clock_type::duration thread_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec};
}

TEST_F(queue_slow_body_here, an_async_get_waits_for_a_half_written_body_without_spinning) {
  boost::asio::io_context io;
  bool done = false;
  std::error_code got_ec;
  slow_blob got;
  mproc::async_get(io.get_executor(), q, [&](std::error_code ec, slow_blob v) {
    done = true;
    got_ec = ec;
    got = std::move(v);
  });
  // The readiness fd is readable all along (the message is there); before, the operation took
  // that for news and asked again at once, a whole CPU for as long as the body was half there.
  auto cpu_before = thread_cpu_time();
  io.run_for(400ms);
  auto cpu = thread_cpu_time() - cpu_before;
  EXPECT_FALSE(done) << "completed with a half-written body: " << got_ec.message();
  EXPECT_LT(cpu, 100ms) << "the asynchronous get spun while the body was being written";
  touch(go.path);
  io.run_for(20s);  // returns once the operation completed
  EXPECT_TRUE(done);
  EXPECT_FALSE(got_ec) << got_ec.message();
  EXPECT_EQ(got.value, pattern(blob_size, 5));
  expect_producer_let_go();
}

TEST_F(queue_slow_body_here, a_consumer_killed_inside_a_decode_leaves_the_message_whole_to_the_next) {
  // The record is out of the consumer's store and being decoded outside its lock, its body
  // borrowed, when SIGKILL comes: the owner gives the message to the next get, body and all.
  auto out = node.make_queue<std::string>();
  auto consumer = node.spawn(decode_until_killed, q, out);
  watchdog.add(consumer);
  ASSERT_EQ(out.get(20s), "decoding");
  consumer.kill();
  ASSERT_TRUE(consumer.join(20s));
  EXPECT_EQ(consumer.exitcode(), -SIGKILL);
  touch(go.path);
  EXPECT_EQ(q.get(20s).value, pattern(blob_size, 5));
  EXPECT_EQ(q.qsize(), 0u);
  expect_producer_let_go();
}

/// Runs `consume` in another process on a queue whose one message has a stalled producer, and
/// expects its report "ok", and the producer let go by the go-ahead file, not by giving up.
void expect_ok_from(void (*consume)(mproc::queue<slow_blob>, std::string, report)) {
  mproc::node node;
  mproc::test::guard watchdog{30s};
  go_ahead_file go;
  auto q = node.make_queue<slow_blob>();
  auto out = node.make_queue<std::string>();
  auto producer = node.spawn(put_stalled, q, go.path, 5u);
  watchdog.add(producer);
  auto consumer = node.spawn(consume, q, go.path, out);
  watchdog.add(consumer);
  EXPECT_EQ(out.get(25s), "ok");
  ASSERT_TRUE(producer.join(20s));
  EXPECT_EQ(producer.exitcode(), 0) << "the producer was let go only when it gave up waiting";
  ASSERT_TRUE(consumer.join(20s));
  EXPECT_EQ(consumer.exitcode(), 0);
  EXPECT_EQ(q.qsize(), 0u);
}

TEST(queue_slow_body, a_get_in_another_process_times_out_on_a_half_written_body_and_the_next_get_has_it_whole) {
  expect_ok_from(time_out_then_take);
}

TEST(queue_slow_body, a_get_decoding_in_another_process_holds_up_neither_its_puts_nor_its_replies) {
  expect_ok_from(put_during_a_decode);
}

}  // namespace
