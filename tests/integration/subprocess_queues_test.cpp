// mproc/subprocess_queues.hpp: a command whose stdout lines arrive on a queue and whose stdin is
// fed from a queue, read by this process and by a child process.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include <mproc/mproc.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
using mproc::errc;
namespace sp = mproc::subprocess;
namespace mt = mproc::test;

namespace {

/// In a child process: counts the lines until the queue is closed; exit code = their number.
void count_lines(mproc::queue_reader<std::string> lines) {
  int n = 0;
  std::error_code ec;
  while (lines.get(ec)) ++n;
  std::_Exit(ec == errc::closed ? n : 100);
}
MPROC_ENTRY(count_lines);

/// In a child process: runs a command; exit 0 when its output came back right.
void run_a_command() {
  mproc::subprocess::run_options o;
  o.capture = true;
  o.input = "from a child\n";
  auto r = mproc::subprocess::run({"cat"}, o);
  std::_Exit(r.returncode == 0 && r.stdout_bytes == "from a child\n" ? 0 : 1);
}
MPROC_ENTRY(run_a_command);

// ---- a large input message whose body its producer is slow to write ----------------------

constexpr std::size_t stalled_size = std::size_t{8} << 20;

/// In a child process: puts 8 MiB of 'x' whose second half cannot be read until `go_ahead`
/// exists, so the consumer's get meets a body that is still being written.
void put_a_stalled_string(mproc::queue<std::string> input, std::string go_ahead) {
  std::string big(stalled_size, 'x');  // its own pages (malloc maps a block this large)
  if (!mt::stall_reads_until(big.data() + stalled_size / 2, stalled_size / 2, go_ahead)) std::_Exit(3);
  input.put(big);
  std::_Exit(mt::stall_gave_up() ? 9 : 0);  // 9: it gave up waiting
}
MPROC_ENTRY(put_a_stalled_string);

/// Commands started inside children, under every start method (the fork method's child gets a
/// launcher thread of its own: the parent's does not exist in it).
class subprocess_in_children : public mt::method_test {};

TEST_P(subprocess_in_children, a_child_process_runs_a_command) {
  sp::run({"true"});  // this process has a launcher thread now; a fork child must not use it
  EXPECT_EQ(run_child(run_a_command), 0);
  EXPECT_TRUE(mt::zombie_children(::getpid()).empty());
}
INSTANTIATE_TEST_SUITE_P(all_methods, subprocess_in_children, mt::all_start_methods(), mt::method_name);

class subprocess_queues : public testing::Test {
 protected:
  mproc::node node;
  mt::guard watchdog{30s};
  void TearDown() override { EXPECT_TRUE(mt::zombie_children(::getpid()).empty()); }

  /// Every line until the queue is closed.
  static std::vector<std::string> drain(mproc::queue<std::string>& q) {
    std::vector<std::string> out;
    std::error_code ec;
    while (auto line = q.get(10s, ec)) out.push_back(*line);
    EXPECT_EQ(ec, errc::closed);
    return out;
  }
};

TEST_F(subprocess_queues, stdout_lines_arrive_as_messages_and_the_queue_closes_at_the_end) {
  auto lines = node.make_queue<std::string>();
  sp::queued_command cmd{{"printf", "one\\ntwo\\n\\nlast \\377"}, lines};
  EXPECT_EQ(drain(lines), (std::vector<std::string>{"one", "two", "", "last \xFF"}));  // bytes, not text
  EXPECT_EQ(cmd.wait(), 0);
}

TEST_F(subprocess_queues, stdin_is_fed_from_a_queue_and_closed_at_its_end_of_stream) {
  auto lines = node.make_queue<std::string>();
  auto input = node.make_queue<std::string>();
  sp::queued_command cmd{{"sed", "-u", "s/.*/<&>/"}, lines, input.reader()};  // -u: a line out per line in
  input.put("hello\n");
  EXPECT_EQ(lines.get(10s), "<hello>");  // a round trip while stdin is still open
  input.put("wor");
  input.put("ld\n");
  input = {};  // the last writer is gone: end of stream, so the command's stdin closes
  EXPECT_EQ(drain(lines), (std::vector<std::string>{"<world>"}));
  EXPECT_EQ(cmd.wait(5s), 0);
}

TEST_F(subprocess_queues, a_closed_input_queue_also_ends_stdin) {
  auto lines = node.make_queue<std::string>();
  auto input = node.make_queue<std::string>();
  sp::queued_command cmd{{"wc", "-l"}, lines, input.reader()};
  for (int i = 0; i < 1000; ++i) input.put("x\n");
  input.close();
  auto out = drain(lines);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::stoi(out[0]), 1000);
  EXPECT_EQ(cmd.wait(), 0);
}

TEST_F(subprocess_queues, a_large_input_message_still_being_written_reaches_stdin_whole) {
  // The stdin pump gets with a deadline of 100 ms; a message whose body is still being written
  // then gives errc::timeout (and stays first). Before, the pump took that for the end of its
  // input and closed the command's stdin: wc counted 0 bytes.
  auto lines = node.make_queue<std::string>();
  auto input = node.make_queue<std::string>();
  sp::queued_command cmd{{"wc", "-c"}, lines, input.reader()};
  std::string go_ahead = testing::TempDir() + "mproc-stalled-" + std::to_string(::getpid());
  std::remove(go_ahead.c_str());
  auto producer = node.spawn(put_a_stalled_string, input, go_ahead);
  watchdog.add(producer.pid());
  std::this_thread::sleep_for(500ms);  // several of the pump's 100 ms gets meet the half body
  std::fclose(std::fopen(go_ahead.c_str(), "w"));
  producer.join();
  std::remove(go_ahead.c_str());
  EXPECT_EQ(producer.exitcode(), 0) << "9: the producer gave up waiting";
  input.close();
  auto out = drain(lines);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::stoul(out[0]), stalled_size);
  EXPECT_EQ(cmd.wait(5s), 0);
}

TEST_F(subprocess_queues, another_process_consumes_the_lines) {
  auto lines = node.make_queue<std::string>();
  auto consumer = node.spawn(count_lines, lines.reader());
  watchdog.add(consumer);
  {
    sp::queued_command cmd{{"seq", "1", "5000"}, lines};
    EXPECT_EQ(cmd.wait(), 0);
  }
  ASSERT_TRUE(consumer.join(20s));
  EXPECT_EQ(consumer.exitcode(), 5000 % 256);
}

TEST_F(subprocess_queues, destructor_kills_a_running_command_and_stops_the_pumps) {
  auto lines = node.make_queue<std::string>();
  auto input = node.make_queue<std::string>();
  mt::proc_ref ref;
  auto t0 = mt::steady::now();
  {
    sp::queued_command cmd{{"sh", "-c", "echo ready; exec sleep 30"}, lines, input.reader()};
    ref = mt::ref_of(cmd.pid());
    EXPECT_EQ(lines.get(10s), "ready");
    EXPECT_EQ(cmd.wait(50ms), std::nullopt);
  }
  EXPECT_LT(mt::steady::now() - t0, 5s);
  EXPECT_FALSE(mt::running(ref));
  sp::queued_command killed{{"sleep", "30"}, lines};
  killed.terminate();
  EXPECT_EQ(killed.wait(), -SIGTERM);
}

TEST_F(subprocess_queues, start_errors_are_typed) {
  auto lines = node.make_queue<std::string>();
  std::error_code ec;
  sp::queued_command missing{{"mproc-no-such-command-anywhere"}, lines, std::nullopt, {}, ec};
  EXPECT_EQ(ec, errc::command_not_found);
  sp::queued_command no_queue{{"true"}, mproc::queue<std::string>{}, std::nullopt, {}, ec};
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_THROW((sp::queued_command{{"mproc-no-such-command-anywhere"}, lines}), mproc::error);
}

}  // namespace
