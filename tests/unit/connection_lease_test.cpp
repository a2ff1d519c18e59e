// A latency-mode connection's reading, borrowed by a thread that waits for an answer
// (framework/src/mailbox/connection.hpp, borrow_reading): that thread reads and dispatches,
// the I/O thread is not woken meanwhile, and whatever the borrower leaves goes back to the I/O
// thread in order. One process: a real socketpair, a real Asio I/O thread, raw frames.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <boost/asio/post.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "../../framework/src/mailbox/connection.hpp"

using namespace std::chrono_literals;
namespace wire = mproc::detail::wire;

namespace {

class connection_lease : public ::testing::Test {
 protected:
  struct seen {
    std::uint64_t id;
    std::thread::id thread;
  };

  connection_lease() {
    std::error_code ec;
    auto [ours, theirs] = mproc::detail::make_socketpair(SOCK_STREAM, ec);
    peer_ = std::move(theirs);
    conn_ = std::make_shared<mproc::detail::connection>(io_, std::move(ours));
    conn_->set_direct_writes(true);
    conn_->start(
        [this](const wire::header& h, std::span<const std::byte>, mproc::detail::fd_set_owned&) {
          {
            std::lock_guard lock{mutex_};
            seen_.push_back({h.type_id, std::this_thread::get_id()});
          }
          changed_.notify_all();
          if (on_frame_) on_frame_(h.type_id);
        },
        [](std::error_code) {});
  }

  ~connection_lease() override {
    conn_->close();
    conn_->stop_handlers();
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  /// Writes frames with these type ids in one write, as the peer process would.
  void peer_writes(std::initializer_list<std::uint64_t> ids) {
    std::vector<std::byte> bytes;
    std::byte payload[8]{};
    for (auto id : ids) wire::put_frame(bytes, wire::kind::actor_message, id, payload);
    std::error_code ec;
    mproc::detail::write_all(peer_.get(), bytes.data(), bytes.size(), ec);
    ASSERT_FALSE(ec) << ec.message();
  }

  /// Frames the peer can read within `within`, without blocking longer.
  std::size_t peer_reads_frames(std::chrono::milliseconds within) {
    std::vector<std::byte> buf(4096);
    std::size_t got = 0;
    auto until = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < until) {
      ssize_t n = ::recv(peer_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) got += static_cast<std::size_t>(n);
      else std::this_thread::sleep_for(1ms);
    }
    return got / (sizeof(wire::header) + 8);
  }

  /// The I/O thread, held in a handler of ours until release() (at the latest at destruction).
  class io_block {
   public:
    void release() {
      if (!released_) release_.set_value();
      released_ = true;
    }
    void wait_blocked() { blocked_future_.wait(); }
    ~io_block() { release(); }

   private:
    friend class connection_lease;
    std::promise<void> release_, blocked_;
    std::shared_future<void> go_{release_.get_future().share()};
    std::future<void> blocked_future_{blocked_.get_future()};
    bool released_ = false;
  };

  /// Posts a handler that will block the I/O thread (wait_blocked() waits until it does).
  std::unique_ptr<io_block> queue_block() {
    auto b = std::make_unique<io_block>();
    post_block(*b);
    return b;
  }
  /// Blocks the I/O thread in a posted handler; returns once it is blocked.
  std::unique_ptr<io_block> block_io() {
    auto b = queue_block();
    b->wait_blocked();
    return b;
  }

  /// The peer writes `ids` and the I/O thread then blocks in a handler posted from a handler:
  /// Asio's reactor runs in between and queues the read wait's handler behind the block.
  std::unique_ptr<io_block> block_io_with_a_wait_queued(std::initializer_list<std::uint64_t> ids) {
    auto b = std::make_unique<io_block>();
    std::vector<std::uint64_t> frames{ids};
    boost::asio::post(io_, [this, frames, &block = *b] {
      std::vector<std::byte> bytes;
      std::byte payload[8]{};
      for (auto id : frames) wire::put_frame(bytes, wire::kind::actor_message, id, payload);
      std::error_code ec;
      mproc::detail::write_all(peer_.get(), bytes.data(), bytes.size(), ec);
      std::this_thread::sleep_for(5ms);  // in the socket before the reactor looks again
      post_block(block);
    });
    b->wait_blocked();
    return b;
  }

  /// Borrows the reading, retrying while the I/O thread is not waiting yet (just started).
  mproc::detail::connection::reading_lease borrow() {
    for (int i = 0; i < 2000; ++i) {
      if (auto lease = conn_->borrow_reading()) return lease;
      std::this_thread::sleep_for(1ms);
    }
    ADD_FAILURE() << "the reading was never free to borrow";
    return {};
  }

  bool has_seen(std::uint64_t id) {
    std::lock_guard lock{mutex_};
    for (auto& s : seen_)
      if (s.id == id) return true;
    return false;
  }

  /// What arrived, once `n` frames did (or after 5 s).
  std::vector<seen> wait_for_frames(std::size_t n) {
    std::unique_lock lock{mutex_};
    changed_.wait_for(lock, 5s, [&] { return seen_.size() >= n; });
    return seen_;
  }

  /// Handlers the I/O thread ran: a wake-up of it runs at least one.
  long io_handlers() const { return io_handlers_.load(); }
  std::thread::id io_thread() const { return thread_.get_id(); }

  mproc::detail::connection& conn() { return *conn_; }

  std::function<void(std::uint64_t)> on_frame_;  // set before frames arrive

 private:
  void post_block(io_block& b) {
    boost::asio::post(io_, [&b, go = b.go_] {
      b.blocked_.set_value();
      go.wait();
    });
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{io_.get_executor()};
  std::atomic<long> io_handlers_{0};
  std::thread thread_{[this] {
    while (!io_.stopped())
      if (io_.run_one() > 0) io_handlers_.fetch_add(1);
  }};
  mproc::detail::unique_fd peer_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<seen> seen_;
  std::shared_ptr<mproc::detail::connection> conn_;  // last: it goes before the I/O context
};

TEST_F(connection_lease, the_borrower_reads_its_answer_itself_and_the_io_thread_is_not_woken) {
  auto lease = borrow();
  ASSERT_TRUE(lease);
  std::this_thread::sleep_for(10ms);  // the I/O thread settles in its wait
  long before = io_handlers();
  peer_writes({1});  // the answer comes before the borrower reads: the I/O thread could see it
  std::this_thread::sleep_for(20ms);  // time enough for a woken I/O thread to run its handler
  long during = io_handlers();
  EXPECT_TRUE(lease.read_until(mproc::detail::deadline_after(5s), [&] { return has_seen(1); }));
  auto got = wait_for_frames(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].thread, std::this_thread::get_id());
  EXPECT_EQ(during, before) << "the bytes woke the I/O thread although the reading was borrowed";
}

TEST_F(connection_lease, frames_after_the_answer_go_to_the_io_thread_in_order) {
  auto lease = borrow();
  ASSERT_TRUE(lease);
  peer_writes({1, 2, 3});  // one write: the borrower's read takes all three
  EXPECT_TRUE(lease.read_until(mproc::detail::deadline_after(5s), [&] { return has_seen(1); }));
  { auto ended = std::move(lease); }  // hands the reading back
  auto got = wait_for_frames(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[0].thread, std::this_thread::get_id());
  EXPECT_EQ(got[1].id, 2u);
  EXPECT_EQ(got[2].id, 3u);
  EXPECT_EQ(got[1].thread, io_thread());
  EXPECT_EQ(got[2].thread, io_thread());
}

TEST_F(connection_lease, bytes_that_come_after_the_borrower_stopped_reading_reach_the_io_thread) {
  // A frame read by the I/O thread first: its gate then has the socket on its ready list, where
  // reopening the gate does not wake anybody (readiness_gate.hpp).
  peer_writes({0});
  ASSERT_EQ(wait_for_frames(1).size(), 1u);
  auto lease = borrow();
  ASSERT_TRUE(lease);
  // Frame 2 arrives while the gate is closed and the borrower, answered, reads no more.
  on_frame_ = [&](std::uint64_t id) {
    if (id == 1) peer_writes({2});
  };
  peer_writes({1});
  EXPECT_TRUE(lease.read_until(mproc::detail::deadline_after(5s), [&] { return has_seen(1); }));
  std::this_thread::sleep_for(5ms);
  { auto ended = std::move(lease); }
  auto got = wait_for_frames(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].thread, std::this_thread::get_id());
  EXPECT_EQ(got[2].id, 2u);
  EXPECT_EQ(got[2].thread, io_thread());
}

TEST_F(connection_lease, a_wait_of_the_io_thread_that_fired_while_the_reading_was_borrowed_is_made_again) {
  // The I/O thread collected the readiness (its wait's handler is queued) but has not run the
  // handler when a thread borrows the reading: that handler, run later, finds the reading
  // borrowed and leaves it. The lease's end must then get the I/O thread reading again.
  auto block = block_io_with_a_wait_queued({1});
  auto lease = borrow();
  ASSERT_TRUE(lease);
  EXPECT_TRUE(lease.read_until(mproc::detail::deadline_after(5s), [&] { return has_seen(1); }));
  block->release();
  std::this_thread::sleep_for(20ms);  // the wait's handler runs now and finds the reading borrowed
  { auto ended = std::move(lease); }
  peer_writes({2});
  auto got = wait_for_frames(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].thread, std::this_thread::get_id());
  EXPECT_EQ(got[1].thread, io_thread());
}

TEST_F(connection_lease, while_a_hand_back_is_on_its_way_nobody_borrows_the_reading) {
  // A lease that leaves frames posts resume_reading; a wait of the I/O thread queued before it
  // must not start a second chain of reads meanwhile: that chain would let a borrower in while
  // resume_reading, still to run, reads beside it.
  auto first = block_io_with_a_wait_queued({1, 2});
  auto lease = borrow();
  ASSERT_TRUE(lease);
  EXPECT_TRUE(lease.read_until(mproc::detail::deadline_after(5s), [&] { return has_seen(1); }));
  auto second = queue_block();  // after the wait's handler, before resume_reading
  { auto ended = std::move(lease); }  // frame 2 is left: resume_reading is posted
  first->release();
  second->wait_blocked();  // the wait's handler ran, resume_reading has not
  EXPECT_FALSE(conn().borrow_reading()) << "borrowed while resume_reading was still to run";
  second->release();
  auto got = wait_for_frames(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].id, 2u);
  EXPECT_EQ(got[1].thread, io_thread());
}

TEST_F(connection_lease, without_an_answer_the_borrower_gives_up_at_its_deadline_and_later_bytes_reach_the_io_thread) {
  auto lease = borrow();
  ASSERT_TRUE(lease);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(lease.read_until(mproc::detail::deadline_after(20ms), [&] { return has_seen(1); }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  { auto ended = std::move(lease); }
  peer_writes({1});
  auto got = wait_for_frames(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].thread, io_thread());
}

TEST_F(connection_lease, send_now_writes_from_the_calling_thread_however_recent_the_last_write) {
  // A requester that borrowed the reading writes its request itself, even when its last request
  // left a moment ago (a plain send would leave that to the I/O thread, waking it).
  auto block = block_io();  // the I/O thread writes nothing now
  std::byte payload[8]{};
  for (std::uint64_t id = 1; id <= 20; ++id) conn().send_now(wire::kind::actor_message, id, payload);  // µs apart
  EXPECT_EQ(peer_reads_frames(50ms), 20u);
}

TEST_F(connection_lease, only_one_thread_holds_the_reading_and_not_while_the_io_thread_reads) {
  auto lease = borrow();
  ASSERT_TRUE(lease);
  EXPECT_FALSE(conn().borrow_reading());  // a second borrower waits as usual instead
  { auto ended = std::move(lease); }
  auto again = borrow();
  EXPECT_TRUE(again);
}

}  // namespace
