// Bulk messages by value: a producer's memfd bodies are filled again once their consumer is
// done (framework/src/mailbox/body_pool.hpp), and get_into() reuses the consumer's buffer. Real
// processes under every start method: every message intact and in order, whichever way it is
// taken, and descriptors stay bounded however many messages pass.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <mproc/mproc.hpp>
#include <atomic>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "../../framework/src/mailbox/body_pool.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::test::method_test;

namespace {

using bytes = std::vector<std::byte>;
constexpr std::size_t large = 3 * mproc::detail::wire::out_of_line_threshold + 5;  // gathered, out of line
constexpr int messages = 12;

/// n bytes whose value depends on position and seed, so a misplaced or stale byte shows.
bytes pattern(std::size_t n, unsigned seed) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 131 + seed * 7) & 0xff);
  return b;
}

/// Message i: sizes vary, so bodies of several capacities are filled again.
std::size_t size_of(int i) { return large + static_cast<std::size_t>(i % 3) * (std::size_t{1} << 20); }

/// Puts `count` bulk messages after one first message, and reports how many descriptors its
/// process gained meanwhile, once those of messages still on their way are sent (each body in
/// its pool stays open).
void produce_bulk(mproc::queue<bytes> q, mproc::queue<std::int64_t> fds_gained, int count) {
  q.put(pattern(size_of(0), 0));  // the connection is up after this
  const auto before = static_cast<std::int64_t>(mproc::test::open_fds().size());
  for (int i = 1; i <= count; ++i) q.put(pattern(size_of(i), static_cast<unsigned>(i)));
  auto gained = [&] { return static_cast<std::int64_t>(mproc::test::open_fds().size()) - before; };
  mproc::test::eventually([&] { return gained() <= static_cast<std::int64_t>(mproc::detail::body_pool::max_bodies); });
  fds_gained.put(gained());
}
MPROC_ENTRY(produce_bulk);

/// Puts `count` bulk messages and exits at once: its pool of bodies goes with it.
void put_bulk_and_exit(mproc::queue<bytes> q, int count) {
  for (int i = 0; i < count; ++i) q.put(pattern(size_of(i), static_cast<unsigned>(i)));
}
MPROC_ENTRY(put_bulk_and_exit);

/// A message tagged with its thread ('L' large, 'S' small) and its number in that thread.
bytes tagged(char tag, std::uint32_t seq, std::size_t n) {
  bytes b = pattern(n, seq);
  b[0] = static_cast<std::byte>(tag);
  std::memcpy(b.data() + 1, &seq, sizeof seq);
  return b;
}

/// Two threads put on one queue at once: one large messages (whose memfds are made without
/// the connection's lock), the other small ones in between for as long as that goes on, then
/// 'E' with how many.
void put_from_two_threads(mproc::queue<bytes> q, int large_count) {
  std::atomic<bool> large_done{false};
  std::thread large_puts{[&] {
    for (int i = 0; i < large_count; ++i) q.put(tagged('L', static_cast<std::uint32_t>(i), size_of(i)));
    large_done = true;
  }};
  std::uint32_t small = 0;
  while (!large_done || small < 1000) q.put(tagged('S', small++, 16));
  large_puts.join();
  q.put(tagged('E', small, 16));
}
MPROC_ENTRY(put_from_two_threads);

class queue_bulk : public method_test {
 protected:
  void SetUp() override { MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam()); }
};

TEST_P(queue_bulk, large_and_small_puts_from_two_threads_keep_each_threads_order) {
  auto q = node.make_queue<bytes>();
  constexpr int large_count = 8;
  auto child = start(put_from_two_threads, q, large_count);
  std::uint32_t next_large = 0, next_small = 0;
  for (bool end = false; !end;) {
    bytes b = q.get(20s);
    ASSERT_GE(b.size(), 5u);
    std::uint32_t seq = 0;
    std::memcpy(&seq, b.data() + 1, sizeof seq);
    if (b[0] == std::byte{'L'}) {
      ASSERT_EQ(seq, next_large);
      ASSERT_EQ(b, tagged('L', seq, size_of(static_cast<int>(seq))));
      ++next_large;
    } else if (b[0] == std::byte{'S'}) {
      ASSERT_EQ(b, tagged('S', next_small, 16));
      ++next_small;
    } else {
      ASSERT_EQ(b, tagged('E', next_small, 16)) << "small messages lost";
      end = true;
    }
  }
  EXPECT_EQ(next_large, static_cast<std::uint32_t>(large_count));
  EXPECT_EQ(finish(child), 0);
}

TEST_P(queue_bulk, messages_outlive_the_producer_that_pooled_their_bodies) {
  auto q = node.make_queue<bytes>();
  EXPECT_EQ(run_child(put_bulk_and_exit, q, 6), 0);
  bytes kept;
  for (int i = 0; i < 6; ++i) {
    q.get_into(kept, 10s);
    ASSERT_EQ(kept, pattern(size_of(i), static_cast<unsigned>(i))) << i;
  }
}

TEST_P(queue_bulk, messages_from_another_process_arrive_intact_however_they_are_taken) {
  auto q = node.make_queue<bytes>();
  auto fds_gained = node.make_queue<std::int64_t>();
  auto child = start(produce_bulk, q, fds_gained, messages);
  ASSERT_EQ(q.get(20s), pattern(size_of(0), 0));
  const std::size_t before = mproc::test::open_fds().size();
  bytes kept;
  for (int i = 1; i <= messages; ++i) {
    auto expected = pattern(size_of(i), static_cast<unsigned>(i));
    if (i % 2 == 0) {
      ASSERT_EQ(q.get(20s), expected) << i;
    } else {
      q.get_into(kept, 20s);
      ASSERT_EQ(kept, expected) << i;
    }
  }
  fds_gained.get(20s);
  EXPECT_EQ(finish(child), 0);
  EXPECT_LE(mproc::test::open_fds().size(), before) << "the consumer keeps descriptors of bodies it read";
}

TEST_P(queue_bulk, a_producer_keeps_a_bounded_number_of_bodies_open) {
  auto q = node.make_queue<bytes>();
  auto fds_gained = node.make_queue<std::int64_t>();
  auto child = start(produce_bulk, q, fds_gained, 3 * messages);
  for (int i = 0; i <= 3 * messages; ++i) ASSERT_EQ(q.get(20s).size(), size_of(i)) << i;
  EXPECT_LE(fds_gained.get(20s), static_cast<std::int64_t>(mproc::detail::body_pool::max_bodies))
      << "a descriptor per message: bodies are not pooled, or leak";
  EXPECT_EQ(finish(child), 0);
}

INSTANTIATE_TEST_SUITE_P(methods, queue_bulk, mproc::test::all_start_methods(), mproc::test::method_name);

// ---- get_into ---------------------------------------------------------------------------

TEST(queue_get_into, a_vector_taken_again_keeps_its_memory) {
  mproc::node node;
  auto q = node.make_queue<bytes>();
  q.put(pattern(large, 1));
  q.put(pattern(large, 2));
  q.put(pattern(10, 3));
  bytes v;
  q.get_into(v);
  EXPECT_EQ(v, pattern(large, 1));
  const std::byte* memory = v.data();
  q.get_into(v, 1s);
  EXPECT_EQ(v, pattern(large, 2));
  EXPECT_EQ(v.data(), memory) << "a fresh buffer for a message that fits the old one";
  std::error_code ec;
  q.get_into(v, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(v, pattern(10, 3)) << "a shorter message leaves nothing of the longer one";
}

TEST(queue_get_into, replaces_whatever_the_value_held) {
  mproc::node node;
  auto q = node.make_queue<std::vector<std::string>>();
  q.put({"a", "b"});
  std::vector<std::string> v{"old", "values", "here"};
  q.get_into(v);
  EXPECT_EQ(v, (std::vector<std::string>{"a", "b"}));
}

TEST(queue_get_into, reports_empty_and_closed_like_get) {
  mproc::node node;
  auto q = node.make_queue<bytes>();
  bytes v = pattern(10, 1);
  std::error_code ec;
  q.get_into(v, 20ms, ec);
  EXPECT_EQ(ec, errc::empty);
  try {
    q.get_into(v, 20ms);
    ADD_FAILURE() << "no error";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::empty);
  }
  q.close();
  q.get_into(v, ec);
  EXPECT_EQ(ec, errc::closed);
  mproc::queue<bytes> none;
  none.get_into(v, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
}

// ---- a producer dying mid-message -------------------------------------------------------

/// A large value that is a vector to its consumer, and to its producer any memory it points to
/// (the bytes go straight from there into the message's body, after the frame went out).
struct blob {
  bytes value;
  std::span<const std::byte> source;  // sent instead of `value` when set
};

}  // namespace

template <>
struct mproc::codec<blob> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const blob& b) {
    auto s = b.source.empty() ? std::span<const std::byte>{b.value} : b.source;
    w.size(s.size());
    w.raw(s.data(), s.size());
  }
  static void decode(reader& r, blob& b) { mproc::decode(r, b.value); }
};

namespace {

constexpr std::size_t blob_size = std::size_t{16} << 20;

/// Puts a blob whose second half cannot be read: the producer faults while it copies it into
/// the body, after the frame went out, and dies there (its SIGSEGV handler first gives the
/// frame time to reach the queue), as a producer killed in the middle of a message.
void put_and_die_mid_copy(mproc::queue<blob> q) {
  void* p = ::mmap(nullptr, blob_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::_Exit(2);
  std::memset(p, 7, blob_size / 2);
  if (::mprotect(static_cast<std::byte*>(p) + blob_size / 2, blob_size / 2, PROT_NONE) != 0) std::_Exit(3);
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    timespec pause{0, 300 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
    ::_exit(9);
  };
  ::sigaction(SIGSEGV, &sa, nullptr);
  q.put(blob{{}, {static_cast<const std::byte*>(p), blob_size}});
  std::_Exit(4);  // not reached
}
MPROC_ENTRY(put_and_die_mid_copy);

void put_blob(mproc::queue<blob> q, unsigned seed) { q.put(blob{pattern(blob_size, seed), {}}); }
MPROC_ENTRY(put_blob);

TEST(queue_bulk_producer_death, a_producer_dying_mid_message_gives_the_consumer_bad_message_not_a_torn_value) {
  mproc::node node;
  mproc::test::guard watchdog{30s};
  auto q = node.make_queue<blob>();
  auto dying = node.spawn(put_and_die_mid_copy, q);
  watchdog.add(dying);
  try {
    auto torn = q.get(20s);
    ADD_FAILURE() << "a message whose producer died while writing it was delivered (" << torn.value.size() << " bytes)";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::bad_message) << e.what();
  }
  ASSERT_TRUE(dying.join(20s));
  EXPECT_EQ(dying.exitcode(), 9) << "the producer did not die in the middle of its copy";
  // The queue goes on: the next producer's message arrives intact.
  auto next = node.spawn(put_blob, q, 3u);
  watchdog.add(next);
  EXPECT_EQ(q.get(20s).value, pattern(blob_size, 3));
  ASSERT_TRUE(next.join(20s));
  EXPECT_EQ(next.exitcode(), 0);
}

}  // namespace
