// Queues and pipes handed to a process on another node (remote_node::spawn_process).
#include <gtest/gtest.h>
#include <signal.h>

#include <mproc/cluster.hpp>
#include <mproc/node.hpp>
#include <mproc/pipe.hpp>
#include <mproc/queue.hpp>
#include <mproc/shared_memory.hpp>

#include "cluster_fixture.hpp"
#include "cluster_test_actors.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using namespace cluster_test;

namespace {

int code(mproc::errc e) { return static_cast<int>(e); }

/// A new queue whose only writer is the far process `fn(queue, n)`: our reader and that process.
template <class Fn>
std::pair<mproc::queue_reader<int>, mproc::cluster::remote_process> far_writer(mproc::node& node,
                                                                               const mproc::cluster::remote_node& remote,
                                                                               Fn fn, int n) {
  auto q = node.make_queue<int>();
  auto p = remote.spawn_process(fn, q, n);
  return {q.reader(), std::move(p)};
}

/// Gets 0, 1, ..., n-1 in order, then the end of the stream.
void expect_numbers_then_end(mproc::queue_reader<int>& numbers, int n) {
  for (int i = 0; i < n; ++i) EXPECT_EQ(numbers.get(20s), i);
  std::error_code ec;
  numbers.get(20s, ec);
  EXPECT_EQ(ec, mproc::errc::end_of_stream) << ec.message();
}

void expect_clean_exit(mproc::cluster::remote_process& p) {
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(cluster, a_process_on_another_node_puts_into_our_queue_until_it_ends) {
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  // Itself, or through a child of its own there (a plain child of a plain child).
  for (auto [fn, n] : {std::pair{&put_numbers, 1000}, std::pair{&pass_on, 100}}) {
    auto [numbers, p] = far_writer(node, remote, fn, n);
    expect_numbers_then_end(numbers, n);
    expect_clean_exit(p);
  }
}

TEST_F(cluster, a_writer_on_another_node_killed_outright_ends_the_stream) {
  other_node b{cookie_file, watchdog};
  auto [numbers, p] = far_writer(node, join(b), put_numbers_then_die, 10);
  expect_numbers_then_end(numbers, 10);
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST_F(cluster, a_consumer_on_another_node_gets_waits_and_puts_into_a_bounded_queue) {
  other_node b{cookie_file, watchdog};
  auto in = node.make_queue<std::string>();
  auto out = node.make_queue<std::string>(4);  // the far process waits for room
  auto p = join(b).spawn_process(upper_case, in.reader(), out);
  for (int i = 0; i < 50; ++i) in.put("item " + std::to_string(i));
  in = {};  // our only writer: the far consumer sees the end once it took everything
  for (int i = 0; i < 50; ++i) EXPECT_EQ(out.get(20s), "ITEM " + std::to_string(i));
  EXPECT_EQ(out.get(20s), "end:" + std::to_string(code(mproc::errc::end_of_stream)));
  expect_clean_exit(p);
}

TEST_F(cluster, queue_calls_from_another_node_give_the_queues_answers_and_errors) {
  other_node b{cookie_file, watchdog};
  auto q = node.make_queue<int>();
  auto report = node.make_queue<int>();
  for (int v : {10, 11, 12}) q.put(v);
  auto p = join(b).spawn_process(queue_calls, q, report);
  EXPECT_EQ(report.get(20s), 3);   // qsize
  EXPECT_EQ(report.get(20s), 33);  // three gets
  EXPECT_EQ(report.get(20s), code(mproc::errc::invalid_argument));  // one task_done too many
  EXPECT_EQ(report.get(20s), code(mproc::errc::invalid_argument));  // mproc::wait
  EXPECT_EQ(report.get(20s), code(mproc::errc::empty));             // a get that timed out
  EXPECT_EQ(report.get(20s), -1);
  EXPECT_TRUE(q.join(5s));  // every task is done
  std::this_thread::sleep_for(200ms);  // the far get is waiting now
  q.close();
  EXPECT_EQ(report.get(20s), code(mproc::errc::closed));  // the waiting get
  EXPECT_EQ(report.get(20s), code(mproc::errc::closed));  // a put after close
  expect_clean_exit(p);
}

TEST_F(cluster, large_messages_cross_in_both_directions) {
  other_node b{cookie_file, watchdog};
  auto in = node.make_queue<std::vector<std::byte>>();
  auto out = node.make_queue<std::vector<std::byte>>();
  std::vector<std::byte> block(3u << 20);  // over the 1 MiB of a message body of its own
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<std::byte>(i * 7 + i / 4096);
  in.put(block);
  auto p = join(b).spawn_process(echo_block, in.reader(), out);
  EXPECT_EQ(out.get(20s), block);
  expect_clean_exit(p);
}

TEST_F(cluster, what_cannot_cross_hosts_is_refused_with_invalid_argument) {
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  auto memory = mproc::shared_memory::create(4096);
  auto pid_queue = node.make_queue<int>();
  try {
    remote.spawn_process(touch_memory, memory, pid_queue);
    ADD_FAILURE() << "shared memory crossed hosts";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::invalid_argument) << e.what();
  }
  // Inside a message to a queue on another host: a pipe end, a queue handle of that host.
  auto pipes = node.make_queue<mproc::pipe<int>>();
  auto queues = node.make_queue<mproc::queue<int>>();
  auto report = node.make_queue<int>();
  auto p = remote.spawn_process(put_host_handles, pipes, queues, report);
  EXPECT_EQ(report.get(20s), code(mproc::errc::invalid_argument));
  EXPECT_EQ(report.get(20s), code(mproc::errc::invalid_argument));
  p.join();
  EXPECT_EQ(pipes.qsize(), 0u);
  EXPECT_EQ(queues.qsize(), 0u);
}

TEST_F(cluster, a_pipe_end_on_another_node_talks_and_ends_like_a_local_one) {
  other_node b{cookie_file, watchdog};
  auto [ours, theirs] = mproc::make_pipe<std::string>();
  auto p = join(b).spawn_process(pipe_echo, theirs);
  theirs.close();  // the far process has its own end now
  for (int i = 0; i < 50; ++i) {
    ours.send("m" + std::to_string(i));
    EXPECT_EQ(ours.recv(), "echo:m" + std::to_string(i));
  }
  std::string large(2u << 20, 'x');  // a body of its own on each host
  large[12345] = 'y';
  ours.send(large);
  EXPECT_EQ(ours.recv(), "echo:" + large);
  ours.send("quit");  // the far end closes: we see the end of the stream
  std::error_code ec;
  ours.recv(20s, ec);
  EXPECT_EQ(ec, mproc::errc::end_of_stream) << ec.message();
  expect_clean_exit(p);
}

TEST_F(cluster, closing_our_end_ends_the_stream_on_the_other_node) {
  other_node b{cookie_file, watchdog};
  auto [r, w] = mproc::make_simplex_pipe<int>();
  auto sums = node.make_queue<int>();
  auto p = join(b).spawn_process(pipe_sum, r, sums);
  r.close();
  for (int i = 1; i <= 100; ++i) w.send(i);
  w.close();
  EXPECT_EQ(sums.get(20s), 5050);
  expect_clean_exit(p);
}

TEST_F(cluster, a_pipe_to_a_lost_node_ends_its_stream) {
  auto b = std::make_unique<other_node>(cookie_file, watchdog);
  auto [ours, theirs] = mproc::make_pipe<std::string>();
  join(*b).spawn_process(pipe_echo, theirs);
  theirs.close();
  ours.send("ping");
  EXPECT_EQ(ours.recv(), "echo:ping");
  ::kill(b->program.pid(), SIGKILL);
  std::error_code ec;
  ours.recv(20s, ec);
  EXPECT_EQ(ec, mproc::errc::end_of_stream) << ec.message();
}

}  // namespace
