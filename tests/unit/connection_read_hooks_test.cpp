// A connection's read hooks (framework/src/mailbox/connection.hpp, set_read_hooks): `before` and
// `after` bracket the frames of each read, on the I/O thread, also when a bad frame ends the
// connection in the middle. One process: a real socketpair, a real Asio I/O thread, raw frames.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../framework/src/mailbox/connection.hpp"

using namespace std::chrono_literals;
namespace wire = mproc::detail::wire;

namespace {

class connection_read_hooks : public ::testing::Test {
 protected:
  connection_read_hooks() {
    std::error_code ec;
    auto [ours, theirs] = mproc::detail::make_socketpair(SOCK_STREAM, ec);
    peer_ = std::move(theirs);
    conn_ = std::make_shared<mproc::detail::connection>(io_, std::move(ours));
    conn_->set_direct_writes(true);
    conn_->set_read_hooks([this] { log("before"); }, [this] { log("after"); });
    conn_->start([this](const wire::header& h, std::span<const std::byte>,
                        mproc::detail::fd_set_owned&) { log("frame " + std::to_string(h.type_id)); },
                 [this](std::error_code why) { log(why ? "closed " + why.message() : "closed"); });
  }

  ~connection_read_hooks() override {
    conn_->close();
    conn_->stop_handlers();
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  /// Frames with these type ids (then `garbage` bytes) in one write, as the peer process would.
  void peer_writes(std::initializer_list<std::uint64_t> ids, std::size_t garbage = 0) {
    std::vector<std::byte> bytes;
    std::byte payload[8]{};
    for (auto id : ids) wire::put_frame(bytes, wire::kind::actor_message, id, payload);
    bytes.resize(bytes.size() + garbage, std::byte{0xff});
    std::error_code ec;
    mproc::detail::write_all(peer_.get(), bytes.data(), bytes.size(), ec);
    ASSERT_FALSE(ec) << ec.message();
  }

  /// The log once it has `n` entries (what it has after 10 s otherwise).
  std::vector<std::string> wait_for_log(std::size_t n) {
    std::unique_lock lock{mutex_};
    changed_.wait_for(lock, 10s, [&] { return log_.size() >= n; });
    return log_;
  }

  bool all_on_io_thread() {
    std::lock_guard lock{mutex_};
    return off_io_thread_ == 0;
  }

 private:
  void log(std::string what) {
    {
      std::lock_guard lock{mutex_};
      log_.push_back(std::move(what));
      if (std::this_thread::get_id() != thread_.get_id()) ++off_io_thread_;
    }
    changed_.notify_all();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{io_.get_executor()};
  mproc::detail::unique_fd peer_;
  std::shared_ptr<mproc::detail::connection> conn_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> log_;
  int off_io_thread_ = 0;
  std::thread thread_{[this] { io_.run(); }};
};

TEST_F(connection_read_hooks, the_hooks_bracket_the_frames_of_each_read) {
  peer_writes({1, 2, 3});
  auto first = wait_for_log(5);
  EXPECT_EQ(first, (std::vector<std::string>{"before", "frame 1", "frame 2", "frame 3", "after"}));
  peer_writes({4});
  auto both = wait_for_log(8);
  EXPECT_EQ(std::vector<std::string>(both.begin() + 5, both.end()),
            (std::vector<std::string>{"before", "frame 4", "after"}));
  EXPECT_TRUE(all_on_io_thread());
}

TEST_F(connection_read_hooks, after_runs_when_a_bad_frame_ends_the_connection_in_the_middle) {
  peer_writes({1}, sizeof(wire::header));  // a header of 0xff bytes: no frame of ours
  auto log = wait_for_log(4);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0], "before");
  EXPECT_EQ(log[1], "frame 1");
  EXPECT_EQ(log[2].rfind("closed ", 0), 0u) << log[2];  // with the bad frame's error
  EXPECT_EQ(log[3], "after");
  EXPECT_TRUE(all_on_io_thread());
}

}  // namespace
