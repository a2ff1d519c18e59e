// The router's inline runner (framework/src/actor/inline_runner.hpp): an idle actor that a delivery
// wakes runs on the I/O thread, and a handler that blocks there does not stall that thread's work.
// One process, a real CAF system and a real Asio I/O thread.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <future>
#include <thread>
#include <vector>

#include "../../framework/src/actor/inline_runner.hpp"

using namespace std::chrono_literals;

namespace {

using detail_runner = mproc::detail::inline_runner;

class inline_runner : public ::testing::Test {
 protected:
  ~inline_runner() override {
    for (auto& a : actors_) caf::anon_send_exit(a, caf::exit_reason::kill);
    runner_.stop();
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  /// Spawned lazily: it is idle until its first message, as an actor waiting for requests is.
  /// (With an argument: CAF 0.17 dereferences a null argument tuple for a function without one.)
  template <class F>
  caf::actor spawn(F behavior) {
    actors_.push_back(sys_.spawn<caf::lazy_init>(std::move(behavior), 0));
    return actors_.back();
  }

  /// Waits until the I/O thread itself runs the context's handlers (again).
  bool io_thread_runs_handlers() {
    for (int i = 0; i < 1000; ++i) {
      std::promise<std::thread::id> ran_on;
      boost::asio::post(io_, [&] { ran_on.set_value(std::this_thread::get_id()); });
      if (ran_on.get_future().get() == thread_.get_id()) return true;
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }

  /// Delivers each of `xs` to `a` from the I/O thread, as the router does with frames it read.
  void deliver(const caf::actor& a, std::vector<int> xs) {
    boost::asio::post(io_, [this, a, xs] {
      for (int x : xs)
        runner_.deliver(caf::actor_cast<caf::strong_actor_ptr>(a),
                        caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, caf::make_message(x)));
    });
  }

  /// Delivers `content` from the I/O thread as the response to request `mid` of `requester`.
  void deliver_response(caf::strong_actor_ptr requester, caf::message_id mid, caf::message content) {
    boost::asio::post(io_, [this, requester, mid, content] {
      runner_.deliver(requester, caf::make_mailbox_element(nullptr, mid.response_id(), {}, content));
    });
  }

  caf::actor_system& sys() { return sys_; }
  detail_runner& runner() { return runner_; }
  friend std::vector<int> chunks_with_each_run_inline(inline_runner&, int, int, std::chrono::nanoseconds);
  std::thread::id io_thread() const { return thread_.get_id(); }
  boost::asio::io_context& io() { return io_; }

 private:
  caf::actor_system_config cfg_;
  caf::actor_system sys_{cfg_};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{io_.get_executor()};
  std::thread thread_{[this] { io_.run(); }};
  detail_runner runner_{sys_, io_};
  std::vector<caf::actor> actors_;
};

/// Delivers `runs` runs' worth of ints at once to each of `chunks` actors in turn (each a new one,
/// so idle: its first run is inline) whose handler spins for `work`: for each run, for how many
/// actors all its messages ran on the I/O thread. Empty when an actor's messages were not all
/// handled within 10 s.
std::vector<int> chunks_with_each_run_inline(inline_runner& t, int chunks, int runs, std::chrono::nanoseconds work) {
  constexpr int run = static_cast<int>(detail_runner::max_inline_messages);
  std::mutex m;
  std::condition_variable handled;
  std::vector<std::thread::id> ran_on;
  std::vector<int> inline_chunks(static_cast<std::size_t>(runs));
  for (int c = 0; c < chunks; ++c) {
    auto a = t.spawn([&](caf::event_based_actor*, int) -> caf::behavior {
      return {[&, work](int) {
        for (auto until = std::chrono::steady_clock::now() + work; std::chrono::steady_clock::now() < until;) {
        }
        std::lock_guard lock{m};
        ran_on.push_back(std::this_thread::get_id());
        handled.notify_all();
      }};
    });
    t.deliver(a, std::vector<int>(static_cast<std::size_t>(runs * run), 1));
    std::unique_lock lock{m};
    auto want = static_cast<std::size_t>((c + 1) * runs * run);
    if (!handled.wait_for(lock, 10s, [&] { return ran_on.size() == want; })) return {};
    auto chunk = ran_on.end() - runs * run;
    for (int r = 0; r < runs; ++r)
      inline_chunks[static_cast<std::size_t>(r)] +=
          std::all_of(chunk + r * run, chunk + (r + 1) * run, [&](auto id) { return id == t.io_thread(); });
  }
  return inline_chunks;
}

TEST_F(inline_runner, an_idle_actor_runs_on_the_thread_that_delivered_its_message) {
  std::promise<std::thread::id> ran_on;
  auto a = spawn([&](caf::event_based_actor*, int) -> caf::behavior {
    return {[&](int) { ran_on.set_value(std::this_thread::get_id()); }};
  });
  deliver(a, {1});
  auto f = ran_on.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), io_thread());
}

TEST_F(inline_runner, more_messages_than_one_run_takes_all_arrive_in_order) {
  constexpr int n = 10 * static_cast<int>(detail_runner::max_inline_messages);
  std::promise<std::vector<int>> done;
  auto a = spawn([&](caf::stateful_actor<std::vector<int>>* self, int) -> caf::behavior {
    return {[&, self](int x) {
      self->state.push_back(x);
      if (x == n - 1) done.set_value(self->state);
    }};
  });
  std::vector<int> xs;
  for (int i = 0; i < n; ++i) xs.push_back(i);
  deliver(a, xs);
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), xs);
}

TEST_F(inline_runner, a_cheap_actor_with_more_than_a_run_to_do_stays_on_the_io_thread) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan makes a run of 32 trivial messages take longer than max_cheap_run";
#endif
  // Before, every run after the first went to a scheduler thread (0 of 40 here). Runs preempted
  // on a busy machine look expensive: most actors, not all, stay.
  auto inline_chunks = chunks_with_each_run_inline(*this, 40, 3, 0ns);
  ASSERT_EQ(inline_chunks.size(), 3u);
  EXPECT_GE(inline_chunks[2], 20);
}

TEST_F(inline_runner, an_actor_goes_to_the_scheduler_after_two_expensive_runs_in_a_row) {
  // A run of 32 messages takes at least 32 * 5 us, more than max_cheap_run. The first expensive
  // run is forgiven (it may have been preempted), the second sends the actor to CAF's threads.
  static_assert(detail_runner::max_inline_messages * 5us > detail_runner::max_cheap_run);
  // (A run that a busy machine stretched past 1-2 ms is taken over by the watcher, and the
  // actor's later runs go to the scheduler: most chunks, not all, show the forgiven run.)
  auto inline_chunks = chunks_with_each_run_inline(*this, 10, 3, 5us);
  ASSERT_EQ(inline_chunks.size(), 3u);
  EXPECT_GE(inline_chunks[1], 5);
  EXPECT_EQ(inline_chunks[2], 0);
}

TEST_F(inline_runner, an_actor_woken_within_a_batch_runs_when_the_batch_ends_on_that_thread) {
  std::atomic<bool> ran{false};
  std::promise<std::thread::id> ran_on;
  auto a = spawn([&](caf::event_based_actor*, int) -> caf::behavior {
    return {[&](int) {
      ran = true;
      ran_on.set_value(std::this_thread::get_id());
    }};
  });
  std::promise<std::pair<bool, bool>> seen;  // ran before end_batch, ran when it returned
  boost::asio::post(io(), [&] {
    runner().begin_batch();
    runner().deliver(caf::actor_cast<caf::strong_actor_ptr>(a),
                     caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, caf::make_message(1)));
    bool before = ran;
    runner().end_batch();
    seen.set_value({before, ran.load()});
  });
  auto s = seen.get_future();
  ASSERT_EQ(s.wait_for(10s), std::future_status::ready);
  auto [before, after] = s.get();
  EXPECT_FALSE(before);
  EXPECT_TRUE(after);  // without the batch the run would wait for a later turn of the I/O thread
  EXPECT_EQ(ran_on.get_future().get(), io_thread());
}

TEST_F(inline_runner, a_handler_that_waits_for_the_io_thread_does_not_deadlock_and_inline_runs_resume) {
  // The handler waits for a handler of the I/O context, as a blocking request from inside an
  // actor waits for the reply the I/O thread would read: the watcher must drive the context.
  std::promise<std::thread::id> io_work_ran_on;
  std::promise<void> handler_returned;
  std::promise<std::thread::id> later_ran_on;
  auto a = spawn([&](caf::event_based_actor*, int) -> caf::behavior {
    return {[&](int x) {
      if (x == 2) return later_ran_on.set_value(std::this_thread::get_id());
      std::promise<void> io_work;
      boost::asio::post(io(), [&] {
        io_work_ran_on.set_value(std::this_thread::get_id());
        io_work.set_value();
      });
      io_work.get_future().wait();
      handler_returned.set_value();
    }};
  });
  deliver(a, {1});
  auto returned = handler_returned.get_future();
  ASSERT_EQ(returned.wait_for(10s), std::future_status::ready);
  EXPECT_NE(io_work_ran_on.get_future().get(), io_thread());  // the watcher ran it
  // The I/O thread takes its context back: the next message for the idle actor runs there again.
  ASSERT_TRUE(io_thread_runs_handlers());
  deliver(a, {2});
  auto later = later_ran_on.get_future();
  ASSERT_EQ(later.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(later.get(), io_thread());
}

TEST_F(inline_runner, a_response_wakes_the_scoped_actor_that_waits_for_it) {
  // The actor leaves the answer to the I/O thread, as a request to another process gets it: the
  // runner wakes the waiting scoped_actor itself (not through CAF's enqueue). Many times, so a
  // lost wake-up would show as a timeout.
  auto relay = spawn([&](caf::event_based_actor* self, int) -> caf::behavior {
    return {[&, self](int x) {
      deliver_response(self->current_sender(), self->current_message_id(), caf::make_message(x + 1));
      return self->make_response_promise<int>();  // answered by the runner
    }};
  });
  caf::scoped_actor self{sys()};
  constexpr auto timeout = 2s;
  for (int i = 0; i < 500; ++i) {
    int got = -1;
    auto t0 = std::chrono::steady_clock::now();
    self->request(relay, timeout, i).receive([&](int r) { got = r; }, [&](const caf::error& e) { FAIL() << sys().render(e); });
    ASSERT_EQ(got, i + 1);
    // A waiter never woken still finds the answer when its timeout expires: that is the failure.
    ASSERT_LT(std::chrono::steady_clock::now() - t0, timeout) << "round trip " << i << " was not woken";
  }
}

}  // namespace
