// Queue messages that carry descriptors: pipe ends, shared memory and locks inside messages,
// and large messages whose body travels as a sealed memfd (records over 1 MiB). Real processes
// under every start method; give-back, a SIGKILLed consumer, limits and forged bodies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <mproc/mproc.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
using mproc::test::method_test;

namespace {

using bytes = std::vector<std::byte>;
constexpr std::size_t threshold = mproc::detail::wire::out_of_line_threshold;

/// n bytes whose value depends on position and seed, so a misplaced byte shows.
bytes pattern(std::size_t n, unsigned seed) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
  return b;
}

// ---- child entry points -----------------------------------------------------------------

/// Takes a pipe end from the queue and echoes one message through it, doubled.
void echo_through_received_pipe(mproc::queue_reader<mproc::pipe<int>> q) {
  auto end = q.get(10s);
  end.send(end.recv() * 2);
}
MPROC_ENTRY(echo_through_received_pipe);

/// Takes a block from the queue and writes a greeting into it.
void write_into_received_memory(mproc::queue_reader<mproc::shared_memory> q) {
  auto m = q.get(10s);
  std::memcpy(m.data(), "hello", 6);
}
MPROC_ENTRY(write_into_received_memory);

/// Takes a lock from the queue, holds it, reports, and waits to be told to let go.
void hold_received_lock(mproc::queue_reader<mproc::lock> q, mproc::queue<int> held, mproc::queue_reader<int> go) {
  auto l = q.get(10s);
  auto guard = l.hold();
  held.put(1);
  go.get(10s);
}
MPROC_ENTRY(hold_received_lock);

/// Sends `count` large messages of `size` bytes (seeds 0, 1, ...), then takes one back and
/// checks it (exit 3 when it differs).
void large_round_trip(mproc::queue<bytes> out, mproc::queue_reader<bytes> in, std::int64_t size, int count) {
  for (int i = 0; i < count; ++i) out.put(pattern(static_cast<std::size_t>(size), static_cast<unsigned>(i)));
  if (in.get(20s) != pattern(static_cast<std::size_t>(size), 99)) std::_Exit(3);
}
MPROC_ENTRY(large_round_trip);

/// Waits until a message has been fetched for this process, reports, and exits (or hangs, to
/// be SIGKILLed) without taking it.
void fetch_but_do_not_take(mproc::queue_reader<bytes> q, mproc::queue<int> fetched, bool hang) {
  if (mproc::wait({q}, 10s).empty()) std::_Exit(3);
  fetched.put(1);
  if (hang) std::this_thread::sleep_for(60s);
}
MPROC_ENTRY(fetch_but_do_not_take);

class queue_fds : public method_test {};

// ---- descriptors inside messages --------------------------------------------------------

TEST_P(queue_fds, a_pipe_end_travels_inside_a_message) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<mproc::pipe<int>>();
  auto child = start(echo_through_received_pipe, q.reader());
  auto [mine, theirs] = mproc::make_pipe<int>();
  q.put(theirs);
  theirs.close();  // the queue holds its own copy until the child takes it
  mine.send(21);
  EXPECT_EQ(mine.recv_for(10s), 42);
  EXPECT_EQ(finish(child), 0);
}

TEST_P(queue_fds, shared_memory_travels_inside_a_message) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<mproc::shared_memory>();
  auto m = mproc::shared_memory::create(4096);
  q.put(m);
  EXPECT_EQ(run_child(write_into_received_memory, q.reader()), 0);
  EXPECT_STREQ(static_cast<const char*>(m.data()), "hello");
}

TEST(queue_fd_memory, a_block_that_comes_back_reuses_its_mapping) {
  mproc::node node;
  auto q = node.make_queue<mproc::shared_memory>();
  auto m = mproc::shared_memory::create(1 << 20);
  q.put(m);
  auto back = q.get(1s);
  EXPECT_EQ(back.data(), m.data()) << "mapped anew: a buffer pool would fault every page again";
  m = {};
  back = {};
  auto other = mproc::shared_memory::create(1 << 20);
  q.put(other);
  EXPECT_EQ(q.get(1s).data(), other.data());
}

TEST_P(queue_fds, a_lock_travels_inside_a_message) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<mproc::lock>();
  auto held = node.make_queue<int>();
  auto go = node.make_queue<int>();
  auto l = mproc::lock::create();
  q.put(l);
  auto child = start(hold_received_lock, q.reader(), held, go.reader());
  held.get(10s);
  EXPECT_FALSE(l.try_acquire().has_value()) << "the child holds the same lock";
  go.put(1);
  EXPECT_EQ(finish(child), 0);
  EXPECT_TRUE(l.try_acquire().has_value());
  l.release();
}

// ---- large messages ---------------------------------------------------------------------

TEST_P(queue_fds, large_messages_arrive_whole_and_in_order_both_ways) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto from_child = node.make_queue<bytes>();
  auto to_child = node.make_queue<bytes>();
  const std::int64_t size = 3 * threshold + 7;
  auto child = start(large_round_trip, from_child, to_child.reader(), size, 3);
  for (unsigned i = 0; i < 3; ++i) ASSERT_EQ(from_child.get(20s), pattern(static_cast<std::size_t>(size), i)) << i;
  to_child.put(pattern(static_cast<std::size_t>(size), 99));
  EXPECT_EQ(finish(child), 0);
}

TEST_P(queue_fds, small_and_large_messages_keep_their_order) {
  auto q = node.make_queue<bytes>();
  const std::size_t sizes[] = {1, threshold, threshold + 1, 2, 3 * threshold, 5};
  // Put by a child (remote producer), taken here; then put here, taken by a child.
  for (std::size_t i = 0; i < std::size(sizes); ++i) q.put(pattern(sizes[i], static_cast<unsigned>(i)));
  for (std::size_t i = 0; i < std::size(sizes); ++i) ASSERT_EQ(q.get(10s), pattern(sizes[i], static_cast<unsigned>(i))) << i;
  EXPECT_EQ(q.qsize(), 0u);
}

TEST_P(queue_fds, a_fetched_large_message_is_given_back_when_the_consumer_exits) {
  MPROC_SKIP_FORK_CHILD_THREADS_UNDER_TSAN(GetParam());
  auto q = node.make_queue<bytes>();
  auto fetched = node.make_queue<int>();
  q.put(pattern(2 * threshold, 5));
  EXPECT_EQ(run_child(fetch_but_do_not_take, q.reader(), fetched, false), 0);
  EXPECT_EQ(fetched.get(1s), 1);
  // The owner may learn of the consumer's end (its connection closing) a moment after join.
  EXPECT_TRUE(mproc::test::eventually([&] { return q.qsize() == 1u; }, 2000ms));
  EXPECT_EQ(q.get(1s), pattern(2 * threshold, 5));
}

TEST_P(queue_fds, a_sigkilled_consumer_loses_no_large_message) {
  auto q = node.make_queue<bytes>();
  auto fetched = node.make_queue<int>();
  q.put(pattern(2 * threshold, 6));
  auto child = start(fetch_but_do_not_take, q.reader(), fetched, true);
  EXPECT_EQ(fetched.get(10s), 1);
  child.kill();
  finish(child);
  EXPECT_EQ(q.get(10s), pattern(2 * threshold, 6));
}

INSTANTIATE_TEST_SUITE_P(methods, queue_fds, mproc::test::all_start_methods(), mproc::test::method_name);

// ---- limits and misuse ------------------------------------------------------------------

TEST(queue_fd_limits, too_many_descriptors_in_one_message_is_refused_whole) {
  mproc::node node;
  auto q = node.make_queue<std::vector<mproc::shared_memory>>();
  const auto fds_before = mproc::test::open_fds().size();
  std::vector<mproc::shared_memory> blocks;
  for (int i = 0; i < 300; ++i) blocks.push_back(mproc::shared_memory::create(64));
  const auto with_blocks = mproc::test::open_fds().size();
  try {
    q.put(blocks);
    FAIL() << "300 descriptors went into one message";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), errc::message_too_large);
  }
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(mproc::test::open_fds().size(), with_blocks) << "the duplicates made for the message leaked";
  blocks.clear();
  EXPECT_EQ(mproc::test::open_fds().size(), fds_before);
}

TEST(pipe_fds, an_end_and_a_large_message_travel_inside_pipe_messages) {
  auto [a, b] = mproc::make_pipe<mproc::pipe<int>>();
  auto [c, d] = mproc::make_pipe<int>();
  a.send(c);
  c.close();
  auto received = b.recv();
  received.send(7);
  EXPECT_EQ(d.recv_for(1s), 7);
  auto [e, f] = mproc::make_pipe<bytes>();
  const auto big = pattern(3 * threshold, 4);
  std::thread sender{[&, &e = e] { e.send(big); e.send_bytes(big); }};
  EXPECT_EQ(f.recv(), big);
  EXPECT_EQ(f.recv_bytes(), big);
  sender.join();
}

/// A raw client that opens the queue (hello) and sends `frame` with `fds` attached.
void send_forged(const mproc::detail::queue_token& token, std::span<const std::byte> frame, std::span<const int> fds,
                 int& sock) {
  namespace wire = mproc::detail::wire;
  sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, token.path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::vector<std::byte> hello;
  auto payload = mproc::to_bytes(wire::hello_message{token.queue_id, token.type_id, "forged"});
  wire::put_frame(hello, wire::kind::hello, 0, payload);
  ASSERT_EQ(::write(sock, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  iovec iov{const_cast<std::byte*>(frame.data()), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(::sendmsg(sock, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
}

/// A data frame with descriptors: u32 count, then one out-of-line record of `length`.
std::vector<std::byte> out_of_line_frame(std::uint64_t type_id, std::uint32_t count, std::uint64_t length) {
  namespace wire = mproc::detail::wire;
  std::vector<std::byte> payload(sizeof count + 16);
  std::uint64_t words[2] = {wire::out_of_line | 8, length};
  std::memcpy(payload.data(), &count, sizeof count);
  std::memcpy(payload.data() + sizeof count, words, sizeof words);
  std::vector<std::byte> frame;
  wire::put_frame(frame, static_cast<wire::kind>(static_cast<std::uint16_t>(wire::kind::data) | wire::with_fds), type_id,
                  payload);
  return frame;
}

TEST(queue_fd_errors, a_frame_claiming_descriptors_it_lacks_closes_that_peer) {
  mproc::node node;
  auto q = node.make_queue<bytes>();
  int sock = -1;
  send_forged(q.token(), out_of_line_frame(q.token().type_id, 1, 10), {}, sock);
  // The owner drops the peer: it reads the welcome, then EOF.
  timeval tv{5, 0};
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(sock, buf, sizeof buf)) > 0) {
  }
  EXPECT_EQ(n, 0) << "the owner kept a peer that lied about its descriptors";
  ::close(sock);
  EXPECT_EQ(q.qsize(), 0u);
  q.put(pattern(10, 1));
  EXPECT_EQ(q.get(1s), pattern(10, 1));
}

TEST(queue_fd_errors, an_unsealed_or_short_body_is_bad_message_not_a_crash) {
  mproc::node node;
  auto q = node.make_queue<bytes>();
  // An unsealed memfd (its sender could still shrink it under a reader: SIGBUS).
  int body = ::memfd_create("forged", MFD_CLOEXEC);
  ASSERT_GE(body, 0);
  auto content = mproc::to_bytes(pattern(100, 1));
  ASSERT_EQ(::write(body, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  int sock = -1;
  int fds[] = {body};
  send_forged(q.token(), out_of_line_frame(q.token().type_id, 1, content.size()), fds, sock);
  ::close(body);
  // A sealed one, shorter than the record claims.
  int sealed = ::memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_EQ(::write(sealed, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ASSERT_EQ(::fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 0);
  int sock2 = -1;
  int fds2[] = {sealed};
  send_forged(q.token(), out_of_line_frame(q.token().type_id, 1, content.size() + 1), fds2, sock2);
  ::close(sealed);
  for (int i = 0; i < 2; ++i) {
    std::error_code ec;
    auto v = q.get(5s, ec);
    EXPECT_EQ(ec, errc::bad_message) << i;
  }
  ::close(sock);
  ::close(sock2);
  q.put(pattern(10, 2));
  EXPECT_EQ(q.get(1s), pattern(10, 2));
}

}  // namespace
