// The Asio face: async_get on queues (owned here and owned elsewhere) and async_recv on pipes,
// completing on an io_context with values and with typed errors.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mproc/async.hpp>
#include <mproc/mproc.hpp>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;

namespace {

void put_values_later(mproc::queue<int> q, int n) {
  std::this_thread::sleep_for(30ms);
  for (int i = 0; i < n; ++i) q.put(i);
}
MPROC_ENTRY(put_values_later);

/// In a child: an io_context that takes 3 values from the parent's queue asynchronously.
void async_consumer(mproc::queue<int> q, mproc::queue<int> result) {
  boost::asio::io_context io;
  int sum = 0, count = 0;
  std::function<void()> next = [&] {
    mproc::async_get(io.get_executor(), q, [&](std::error_code ec, int v) {
      if (ec) std::_Exit(2);
      sum += v;
      if (++count < 3) next();
    });
  };
  next();
  io.run();
  result.put(sum);
}
MPROC_ENTRY(async_consumer);

TEST(async, get_completes_on_the_io_context_in_order) {
  mproc::node node;
  mproc::test::guard watchdog{30s};
  auto q = node.make_queue<int>();
  auto p = node.spawn(put_values_later, q, 3);
  watchdog.add(p);
  boost::asio::io_context io;
  std::vector<int> got;
  std::function<void()> next = [&] {
    mproc::async_get(io.get_executor(), q, [&](std::error_code ec, int v) {
      ASSERT_FALSE(ec) << ec.message();
      got.push_back(v);
      if (got.size() < 3) next();
    });
  };
  next();
  EXPECT_TRUE(got.empty());  // never inside the initiating call
  io.run_for(10s);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  p.join();
}

TEST(async, errors_arrive_as_error_codes) {
  mproc::node node;
  auto q = node.make_queue<int>();
  q.close();
  boost::asio::io_context io;
  std::error_code seen;
  bool called = false;
  mproc::async_get(io.get_executor(), q, [&](std::error_code ec, int) {
    called = true;
    seen = ec;
  });
  mproc::queue<int> empty;
  std::error_code empty_seen;
  mproc::async_get(io.get_executor(), empty, [&](std::error_code ec, int) { empty_seen = ec; });
  io.run_for(5s);
  EXPECT_TRUE(called);
  EXPECT_EQ(seen, errc::closed);
  EXPECT_EQ(empty_seen, errc::invalid_argument);
}

TEST(async, recv_on_a_pipe_and_end_of_stream) {
  auto [r, w] = mproc::make_simplex_pipe<std::string>();
  boost::asio::io_context io;
  std::vector<std::string> got;
  std::error_code last;
  std::function<void()> next = [&] {
    mproc::async_recv(io.get_executor(), r, [&](std::error_code ec, std::string s) {
      if (ec) return void(last = ec);
      got.push_back(s);
      next();
    });
  };
  next();
  std::thread writer{[w = w]() mutable {
    std::this_thread::sleep_for(20ms);
    w.send("a");
    w.send("b");
    w.close();  // copies in one process share the end: this closes it for good
  }};
  io.run_for(10s);
  writer.join();
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(last, errc::end_of_stream);
}

TEST(async, a_queue_owned_by_another_process) {
  mproc::node node;
  mproc::test::guard watchdog{30s};
  auto q = node.make_queue<int>();
  auto result = node.make_queue<int>();
  auto c = node.spawn(async_consumer, q, result);
  watchdog.add(c);
  for (int v : {10, 20, 30}) q.put(v);
  EXPECT_EQ(result.get(20s), 60);
  ASSERT_TRUE(c.join(20s));
  EXPECT_EQ(c.exitcode(), 0);
}

}  // namespace
