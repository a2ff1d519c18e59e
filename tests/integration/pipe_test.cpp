// mproc::pipe<T>: duplex and simplex ends, end-of-stream, poll and timeouts, raw bytes, wrong
// types, garbage and a peer dying mid-frame — in one process and across a real fork.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mproc/mproc.hpp>
#include <string>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

/// Echoes every value plus one until -1 or the end of the stream.
void echo_plus_one(mproc::pipe<std::int64_t> end) {
  for (;;) {
    std::error_code ec;
    auto v = end.recv(ec);
    if (ec == errc::end_of_stream || v == -1) return;
    if (ec) std::_Exit(7);
    end.send(*v + 1);
  }
}
MPROC_ENTRY(echo_plus_one);

/// Writes three words on a simplex writer end, then returns (its end closes with it).
void write_words(mproc::pipe_writer<std::string> w, std::string prefix) {
  for (const char* word : {"a", "b", "c"}) w.send(prefix + word);
}
MPROC_ENTRY(write_words);

/// A process subclass holding a pipe end, as a member.
struct greeter : mproc::process {
  mproc::pipe_writer<std::string> out;
  void run() override { out.send("hello from " + name()); }
  template <class F>
  friend void inspect(F& f, greeter& g) {
    f(g.out);
  }
};
MPROC_PROCESS_CLASS(greeter);

template <class End>
concept can_send = requires(End e) { e.send(1); };
template <class End>
concept can_recv = requires(End e) { e.recv(); };
static_assert(can_send<mproc::pipe<int>> && can_recv<mproc::pipe<int>>);
static_assert(!can_send<mproc::pipe_reader<int>> && can_recv<mproc::pipe_reader<int>>,
              "sending on the reader end of a simplex pipe must not compile");
static_assert(can_send<mproc::pipe_writer<int>> && !can_recv<mproc::pipe_writer<int>>);

TEST(pipe, duplex_both_ways_in_order) {
  auto [a, b] = mproc::make_pipe<std::string>();
  a.send("ping");
  a.send("again");
  EXPECT_EQ(b.recv(), "ping");
  EXPECT_EQ(b.recv(), "again");
  b.send("pong");
  EXPECT_EQ(a.recv(), "pong");
}

TEST(pipe, simplex_and_end_of_stream_after_draining) {
  auto [r, w] = mproc::make_simplex_pipe<int>();
  w.send(1);
  w.send(2);
  w.close();
  EXPECT_EQ(r.recv(), 1);
  EXPECT_EQ(r.recv(), 2);
  std::error_code ec;
  EXPECT_EQ(r.recv(ec), std::nullopt);
  EXPECT_EQ(ec, errc::end_of_stream);
  EXPECT_TRUE(r.poll());  // the end of the stream is "ready" too, as in Python
}

TEST(pipe, poll_and_recv_for_honour_timeouts) {
  auto [a, b] = mproc::make_pipe<int>();
  EXPECT_FALSE(b.poll());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(b.poll(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(b.recv_for(30ms), std::nullopt);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 30ms);
  EXPECT_LT(took, 2s);
  a.send(9);
  EXPECT_TRUE(b.poll(1s));
  EXPECT_EQ(b.recv_for(1s), 9);
}

TEST(pipe, raw_bytes_and_wrong_type) {
  auto [a, b] = mproc::make_pipe<int>();
  std::vector<std::byte> raw{std::byte{1}, std::byte{2}, std::byte{3}};
  a.send_bytes(raw);
  EXPECT_EQ(b.recv_bytes(), raw);
  a.send_bytes(raw);
  std::error_code ec;
  EXPECT_EQ(b.recv(ec), std::nullopt);  // bytes are not an int
  EXPECT_EQ(ec, errc::wrong_type);
  a.send(5);  // the stream is still in sync
  EXPECT_EQ(b.recv(), 5);
}

TEST(pipe, a_message_of_another_type_is_wrong_type) {
  auto [a, b] = mproc::make_pipe<std::string>();
  // Forge an end of another type on the same socket: what a confused peer would send.
  auto [x, y] = mproc::make_pipe<double>();
  std::vector<std::byte> frame;
  mproc::detail::wire::put_header(frame, mproc::detail::wire::kind::data, mproc::detail::wire::type_id<double>(), 16);
  std::uint64_t len = 8;
  double v = 1.5;
  frame.resize(frame.size() + 16);
  std::memcpy(frame.data() + 24, &len, 8);
  std::memcpy(frame.data() + 32, &v, 8);
  ASSERT_EQ(::write(a.native_handle(), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  std::error_code ec;
  b.recv(ec);
  EXPECT_EQ(ec, errc::wrong_type);
}

TEST(pipe, garbage_is_bad_message) {
  auto [a, b] = mproc::make_pipe<int>();
  std::string junk = "this is not a frame at all, not even close";
  ASSERT_EQ(::write(a.native_handle(), junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  std::error_code ec;
  EXPECT_EQ(b.recv(ec), std::nullopt);
  EXPECT_EQ(ec, errc::bad_message);
}

TEST(pipe, oversized_length_is_refused) {
  auto [a, b] = mproc::make_pipe<int>();
  mproc::detail::wire::header h{mproc::detail::wire::magic, mproc::detail::wire::version,
                                static_cast<std::uint16_t>(mproc::detail::wire::kind::data), 0,
                                std::uint64_t{1} << 50};
  ASSERT_EQ(::write(a.native_handle(), &h, sizeof h), static_cast<ssize_t>(sizeof h));
  std::error_code ec;
  b.recv(ec);
  EXPECT_EQ(ec, errc::message_too_large);
}

TEST(pipe, close_from_another_thread_wakes_a_blocked_recv) {
  auto [a, b] = mproc::make_pipe<int>();
  std::thread closer{[&b = b] {
    std::this_thread::sleep_for(30ms);
    b.close();
  }};
  std::error_code ec;
  auto t0 = std::chrono::steady_clock::now();
  b.recv(ec);
  closer.join();
  EXPECT_EQ(ec, errc::closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  b.send(1, ec);
  EXPECT_EQ(ec, errc::closed);
}

TEST(pipe, peer_closing_is_end_of_stream_for_send_too) {
  auto [a, b] = mproc::make_pipe<int>();
  b.close();
  std::error_code ec;
  a.send(1, ec);
  EXPECT_EQ(ec, errc::end_of_stream);
}

TEST(pipe, empty_end_is_invalid_argument) {
  mproc::pipe<int> p;
  std::error_code ec;
  p.send(1, ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW(p.recv(), mproc::error);
}

TEST(pipe, a_received_end_must_match_type_and_direction) {
  auto [r, w] = mproc::make_simplex_pipe<int>();
  std::vector<std::byte> bytes;
  mproc::detail::fd_set_owned fds;
  {
    mproc::detail::transfer_out out;
    bytes = mproc::to_bytes(w);
    fds = std::move(out.fds());
  }
  mproc::detail::transfer_in in{fds};
  auto decode_as = [&](auto tag) {
    using end = decltype(tag);
    try {
      mproc::from_bytes<end>(bytes.data(), bytes.size());
      return std::error_code{};
    } catch (const mproc::error& e) {
      return e.code();
    }
  };
  EXPECT_EQ(decode_as(mproc::pipe_writer<std::string>{}), errc::wrong_type);
  EXPECT_EQ(decode_as(mproc::pipe_reader<int>{}), errc::wrong_type);  // a writer cannot read
  EXPECT_EQ(decode_as(mproc::pipe<int>{}), errc::wrong_type);
  auto w2 = mproc::from_bytes<mproc::pipe_writer<int>>(bytes.data(), bytes.size());
  w2.send(4);
  EXPECT_EQ(r.recv(), 4);
  EXPECT_EQ(decode_as(mproc::pipe_writer<int>{}), errc::bad_message);  // its descriptor was taken
}

// ---- across processes -------------------------------------------------------------------

// ---- ends as arguments of processes, every start method --------------------------------

class pipe_argument : public mproc::test::method_test {};

TEST_P(pipe_argument, ping_pong_with_an_end_passed_as_argument) {
  auto [mine, theirs] = mproc::make_pipe<std::int64_t>();
  auto child = start(echo_plus_one, theirs);
  theirs.close();  // the child has its own copy now: ours must go for it to see our EOF
  for (std::int64_t i = 0; i < 200; ++i) {
    mine.send(i);
    ASSERT_EQ(mine.recv(), i + 1);
  }
  if (GetParam() == mproc::start_method::fork) {
    // A forked child also inherited `mine` and cannot see its end: stop it in-band.
    mine.send(-1);
  }
  mine.close();  // forkserver/spawn: the child only has its own end, and sees the end of ours
  EXPECT_EQ(finish(child), 0);
}

TEST_P(pipe_argument, simplex_writer_to_reader_and_end_of_stream) {
  auto [r, w] = mproc::make_simplex_pipe<std::string>();
  auto child = start(write_words, w, std::string{"w-"});
  w.close();
  EXPECT_EQ(r.recv(), "w-a");
  EXPECT_EQ(r.recv(), "w-b");
  EXPECT_EQ(r.recv(), "w-c");
  std::error_code ec;
  r.recv(ec);
  EXPECT_EQ(ec, errc::end_of_stream);  // the child exited: its end, the only one left, closed
  EXPECT_EQ(finish(child), 0);
}

TEST_P(pipe_argument, an_end_as_member_of_a_process_subclass) {
  auto [r, w] = mproc::make_simplex_pipe<std::string>();
  greeter g;
  g.out = w;
  g.set_start_method(GetParam());
  g.start();
  watchdog.add(g);
  w.close();
  g.out = {};
  EXPECT_EQ(r.recv_for(10s), "hello from " + g.name());
  EXPECT_EQ(finish(g), 0);
}

INSTANTIATE_TEST_SUITE_P(all_methods, pipe_argument, mproc::test::all_start_methods(), mproc::test::method_name);

/// A node whose children are forked (pipe ends reach them by inheritance), and a watchdog.
class pipe_process : public testing::Test {
 protected:
  mproc::node node{mproc::test::with_method(mproc::start_method::fork)};
  mproc::test::guard watchdog{30s};
};

TEST_F(pipe_process, ping_pong_with_a_forked_child) {
  auto [mine, theirs] = mproc::make_pipe<std::int64_t>();
  auto child = node.spawn([end = theirs, other = mine]() mutable {
    other.close();  // fork copied every descriptor: the child closes the end it does not use
    for (;;) {
      std::error_code ec;
      auto v = end.recv(ec);
      if (ec == errc::end_of_stream) return;
      if (ec) std::_Exit(7);
      end.send(*v + 1);
    }
  });
  watchdog.add(child);
  theirs.close();  // our copy of the child's end: the child's recv sees EOF when we close ours
  for (std::int64_t i = 0; i < 1000; ++i) {
    mine.send(i);
    ASSERT_EQ(mine.recv(), i + 1);
  }
  mine.close();
  ASSERT_TRUE(child.join(20s));
  EXPECT_EQ(child.exitcode(), 0);
}

TEST_F(pipe_process, peer_dying_mid_frame_is_bad_message) {
  auto [r, w] = mproc::make_simplex_pipe<std::string>();
  auto child = node.spawn([w = w]() {
    mproc::detail::wire::header h{mproc::detail::wire::magic, mproc::detail::wire::version,
                                  static_cast<std::uint16_t>(mproc::detail::wire::kind::data),
                                  mproc::detail::wire::type_id<std::string>(), 1000};
    (void)!::write(w.native_handle(), &h, sizeof h);
    (void)!::write(w.native_handle(), "half", 4);
    ::kill(::getpid(), SIGKILL);  // dies in the middle of its message
  });
  watchdog.add(child);
  w.close();
  std::error_code ec;
  EXPECT_EQ(r.recv(ec), std::nullopt);
  EXPECT_EQ(ec, errc::bad_message);
  ASSERT_TRUE(child.join(20s));
  EXPECT_EQ(child.exitcode(), -SIGKILL);
}

}  // namespace
