// mproc/cluster.hpp and mproc-node: nodes in separate programs joined over loopback TCP.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <fstream>
#include <future>
#include <mproc/actor_request.hpp>
#include <mproc/cluster.hpp>
#include <mproc/cluster_pool.hpp>
#include <mproc/node.hpp>
#include <mproc/queue.hpp>

#include "cluster_fixture.hpp"
#include "cluster_test_actors.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
namespace mt = mproc::test;
using namespace cluster_test;

namespace {

TEST_F(cluster, a_joined_node_spawns_actors_that_answer_requests) {
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  ASSERT_TRUE(remote);
  EXPECT_EQ(remote.port(), b.port);
  auto calc = remote.spawn<calc_actor>("calc_impl", 10);
  EXPECT_EQ(mproc::request<int>(calc, 5s, add_atom::value, 1, 2), 13);
  auto probe = remote.spawn("probe_impl", 0);
  EXPECT_EQ(mproc::request<int>(probe, 5s, pid_atom::value), b.program.pid());
}

TEST_F(cluster, handles_inside_messages_work_across_nodes) {
  other_node b{cookie_file, watchdog};
  auto probe = join(b).spawn("probe_impl", 0);
  caf::scoped_actor self{mproc::actor_system()};
  self->send(probe, tell_atom::value, caf::actor{self}, 42);
  int got = 0;
  self->receive([&](int n) { got = n; }, caf::after(5s) >> [] {});
  EXPECT_EQ(got, 42);
}

TEST_F(cluster, a_wrong_cookie_is_refused_with_access_denied) {
  other_node b{cookie_file, watchdog};
  std::error_code ec;
  auto remote = mproc::cluster::join(node, "127.0.0.1", b.port, {.cookie = "not-the-secret"}, ec);
  EXPECT_EQ(ec, mproc::errc::access_denied) << ec.message();
  EXPECT_FALSE(remote);
  // The right cookie still works afterwards.
  EXPECT_TRUE(join(b));
}

TEST_F(cluster, the_agent_serves_nothing_before_the_cookie_is_proven) {
  other_node b{cookie_file, watchdog};
  auto& mm = mproc::actor_system().middleman();
  auto agent = mm.remote_actor("127.0.0.1", b.port);
  ASSERT_TRUE(agent) << mproc::describe(agent.error());
  std::error_code ec;
  mproc::request<caf::strong_actor_ptr>(ec, *agent, 5s, caf::spawn_atom::value, std::string{"calc_impl"},
                                        caf::make_message(1), std::set<std::string>{});
  EXPECT_EQ(ec, mproc::errc::access_denied) << ec.message();
  // CAF's own spawn server, which needs no cookie, is closed.
  auto spawned = mm.remote_spawn<caf::actor>(agent->node(), "calc_impl", caf::make_message(1), 5s);
  EXPECT_FALSE(spawned);
}

TEST_F(cluster, a_killed_node_is_reported_as_node_lost_at_once) {
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  auto probe = remote.spawn("probe_impl", 0);
  std::promise<caf::error> node_down, actor_down;
  remote.on_down([&](const caf::error& reason) { node_down.set_value(reason); });
  mproc::on_down(probe, [&](const caf::error& reason) { actor_down.set_value(reason); });
  auto pending = std::async(std::launch::async, [&] {
    std::error_code ec;
    mproc::request<int>(ec, probe, 30s, hang_atom::value);
    return ec;
  });
  std::this_thread::sleep_for(100ms);
  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(b.program.pid(), SIGKILL), 0);
  auto fut = node_down.get_future();
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(mproc::to_error_code(fut.get()), mproc::errc::node_lost);
  std::printf("killed node reported after %.1f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed_at).count());
  auto actor_fut = actor_down.get_future();
  ASSERT_EQ(actor_fut.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(mproc::to_error_code(actor_fut.get()), mproc::errc::node_lost);
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(pending.get(), mproc::errc::node_lost);
}

TEST_F(cluster, a_silent_node_is_found_by_heartbeat_within_two_seconds) {
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  std::promise<std::chrono::steady_clock::time_point> down;
  remote.on_down([&](const caf::error&) { down.set_value(std::chrono::steady_clock::now()); });
  // A stopped process keeps its TCP connection open but sends nothing, like a host cut off.
  auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(b.program.pid(), SIGSTOP), 0);
  auto fut = down.get_future();
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  auto after = fut.get() - stopped_at;
  EXPECT_LT(after, 2s);
  std::printf("silent node reported after %.0f ms\n", std::chrono::duration<double, std::milli>(after).count());
  ::kill(b.program.pid(), SIGKILL);
}

void never_registered(int) {}

mproc::pool_options workers_per_node(std::size_t n) {
  mproc::pool_options o;
  o.workers = n;
  return o;
}

bool pid_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

TEST_F(cluster, a_process_on_another_node_is_joined_with_its_exit_code) {
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  auto p = remote.spawn_process(exit_with, 7);
  EXPECT_GT(p.pid(), 0);
  EXPECT_NE(p.pid(), ::getpid());
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
  EXPECT_FALSE(p.is_alive());
  p.terminate();  // no-op once it has exited
}

TEST_F(cluster, a_process_on_another_node_can_be_terminated) {
  other_node b{cookie_file, watchdog};
  auto p = join(b).spawn_process(sleep_for_ms, 60000);
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.join(100ms));
  p.terminate();
  EXPECT_TRUE(p.join(5s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

void start_far_process(int port, mproc::queue<int> pids) {
  auto remote = mproc::cluster::join(mproc::node::current(), "127.0.0.1", static_cast<std::uint16_t>(port),
                                     {.cookie = "the-secret"});
  pids.put(remote.spawn_process(sleep_for_ms, 60000).pid());
  std::this_thread::sleep_for(60s);
}
MPROC_ENTRY(start_far_process);

// Regression: the thread that joins a process served for another node counted as a blocked call
// of the program, so it took the SIGINT that should have ended a node that handles SIGINT.
TEST_F(cluster, a_node_that_handles_sigint_dies_of_it_while_serving_a_process) {
  mt::subprocess program{{MPROC_CLUSTER_NODE_HELPER, "--sigint-node", cookie_file.string()}};
  watchdog.add(program.pid());
  auto line = program.read_line(20s);
  const std::string prefix = "mproc-node listening on 127.0.0.1:";
  ASSERT_TRUE(line && line->rfind(prefix, 0) == 0) << line.value_or("EOF");
  auto port = static_cast<std::uint16_t>(std::stoi(line->substr(prefix.size())));
  auto far = mproc::cluster::join(node, "127.0.0.1", port, {.cookie = "the-secret"}).spawn_process(sleep_for_ms, 60000);
  ASSERT_GT(far.pid(), 0);
  ::kill(program.pid(), SIGINT);
  auto status = program.wait(15s);
  ASSERT_TRUE(status) << "the node ran on after SIGINT";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGINT) << *status;
}

TEST_F(cluster, a_cluster_pools_join_is_interrupted_by_sigint) {
  // A program blocked in join() on a pool whose workers are on another node: Ctrl-C ends that
  // call with errc::interrupted, as for a local pool (before, it went on waiting for the task).
  other_node b{cookie_file, watchdog};
  mt::subprocess program{{MPROC_CLUSTER_NODE_HELPER, "--sigint-pool-join", cookie_file.string(), std::to_string(b.port)}};
  watchdog.add(program.pid());
  auto line = program.read_line(20s);
  ASSERT_EQ(line.value_or("EOF"), "joining");
  ASSERT_TRUE(mt::main_thread_blocks(program.pid())) << "the program never blocked in join()";
  ::kill(program.pid(), SIGINT);
  auto status = program.wait(15s);
  ASSERT_TRUE(status) << "join() went on waiting after SIGINT";
  auto rest = program.read_rest(2000ms);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3) << "wait status " << *status << "; output:\n" << rest;
  EXPECT_NE(rest.find("interrupted"), std::string::npos) << rest;
}

TEST_F(cluster, processes_started_by_a_node_that_is_lost_are_terminated) {
  other_node b{cookie_file, watchdog};
  auto pids = node.make_queue<int>();
  // The node that starts the far process is a child of ours, so that we can SIGKILL it.
  auto starter = node.spawn(start_far_process, static_cast<int>(b.port), pids);
  watchdog.add(starter);
  auto far = static_cast<pid_t>(pids.get(20s));
  ASSERT_TRUE(pid_exists(far));
  starter.kill();
  starter.join();
  EXPECT_TRUE(mt::eventually([&] { return !pid_exists(far); }, 5s)) << "process " << far << " outlived the node that started it";
}

TEST_F(cluster, a_pool_runs_tasks_on_the_workers_of_two_nodes) {
  other_node b{cookie_file, watchdog}, c{cookie_file, watchdog};
  auto pool = mproc::cluster::make_pool({join(b), join(c)}, workers_per_node(2));
  EXPECT_EQ(pool.workers(), 4u);
  EXPECT_EQ(pool.map(square_task, std::vector<int>{1, 2, 3, 4, 5}), (std::vector<int>{1, 4, 9, 16, 25}));
  EXPECT_EQ(pool.apply(square_task, 12), 144);
  // Slow tasks one per chunk spread over both nodes' workers, none of them this process.
  auto pids = pool.map(slow_pid_task, std::vector<int>(16, 50), 1);
  std::set<int> distinct(pids.begin(), pids.end());
  EXPECT_GE(distinct.size(), 3u);
  EXPECT_EQ(distinct.count(::getpid()), 0u);
  try {
    pool.apply(failing_task, 0);
    ADD_FAILURE() << "a throwing task";
  } catch (const mproc::task_error& e) {
    EXPECT_NE(std::string{e.what()}.find("bad input"), std::string::npos) << e.what();
  }
  pool.close();
  EXPECT_TRUE(pool.join(5s));
}

TEST_F(cluster, a_pool_moves_the_chunks_of_a_lost_node_to_the_others) {
  other_node b{cookie_file, watchdog}, c{cookie_file, watchdog};
  auto pool = mproc::cluster::make_pool({join(b), join(c)}, workers_per_node(2));
  auto all = pool.map_async(slow_pid_task, std::vector<int>(24, 100), 1);
  std::this_thread::sleep_for(250ms);
  ASSERT_EQ(::kill(c.program.pid(), SIGKILL), 0);
  auto pids = all.get();  // complete despite the loss
  EXPECT_EQ(pids.size(), 24u);
  EXPECT_EQ(pool.apply(square_task, 3), 9);  // B still serves
}

TEST_F(cluster, a_pool_that_loses_every_node_fails_with_node_lost_instead_of_hanging) {
  other_node b{cookie_file, watchdog};
  auto pool = mproc::cluster::make_pool({join(b)}, workers_per_node(1));
  auto pending = pool.map_async(slow_pid_task, std::vector<int>(8, 200), 1);
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::kill(b.program.pid(), SIGKILL), 0);
  try {
    pending.get();
    ADD_FAILURE() << "a map on a lost node";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::node_lost) << e.what();
  }
  try {
    pool.apply(square_task, 2);
    ADD_FAILURE() << "a task without nodes";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::node_lost) << e.what();
  }
}

TEST_F(cluster, make_pool_refuses_what_it_cannot_do) {
  std::error_code ec;
  EXPECT_THROW(mproc::cluster::make_pool({}), mproc::error);
  EXPECT_THROW(mproc::cluster::make_pool({mproc::cluster::remote_node{}}), mproc::error);
  other_node b{cookie_file, watchdog};
  mproc::pool_options with_init;
  with_init.maxtasksperchild = 3;
  EXPECT_THROW(mproc::cluster::make_pool({join(b)}, with_init), mproc::error);
}

TEST_F(cluster, misuse_and_unreachable_nodes_get_typed_errors) {
  std::error_code ec;
  mproc::cluster::join(node, "127.0.0.1", 1, {.cookie = ""}, ec);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
  mproc::cluster::listen(node, {.cookie = ""}, ec);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
  // Nothing listens on port 1 of loopback.
  mproc::cluster::join(node, "127.0.0.1", 1, {.cookie = "x", .timeout = 5000ms}, ec);
  EXPECT_EQ(ec, mproc::errc::node_lost) << ec.message();
  other_node b{cookie_file, watchdog};
  auto remote = join(b);
  remote.spawn(ec, "no_such_actor", 1);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
  mproc::cluster::remote_node empty;
  empty.spawn(ec, "calc_impl", 1);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
  EXPECT_THROW(empty.on_down([](const caf::error&) {}), mproc::error);
  EXPECT_THROW(empty.spawn_process(exit_with, 0), mproc::error);
  try {
    remote.spawn_process(never_registered, 1);
    ADD_FAILURE() << "spawn_process of an unregistered function";
  } catch (const mproc::error& e) {
    EXPECT_EQ(e.code(), mproc::errc::unknown_entry);
  }
  mproc::cluster::remote_process none;
  none.join(ec);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
}

TEST_F(cluster, a_taken_port_is_reported) {
  auto first = mproc::cluster::listen(node, {.cookie = "c"});
  ASSERT_NE(first.port(), 0);
  std::error_code ec;
  mproc::cluster::listen(node, {.port = first.port(), .cookie = "c", .reuse_address = false}, ec);
  EXPECT_EQ(ec, std::errc::address_in_use);
}

TEST_F(cluster, this_process_can_listen_and_be_joined_by_itself) {
  auto l = mproc::cluster::listen(node, {.cookie = "c"});
  auto remote = mproc::cluster::join(node, "127.0.0.1", l.port(), {.cookie = "c"});
  auto calc = remote.spawn<calc_actor>("calc_impl", 1);
  EXPECT_EQ(mproc::request<int>(calc, 5s, add_atom::value, 1, 1), 3);
}

TEST_F(cluster, cookie_files_must_be_private_and_not_empty) {
  EXPECT_EQ(mproc::cluster::read_cookie_file(cookie_file), "the-secret");
  std::error_code ec;
  mproc::cluster::read_cookie_file(write_cookie(dir, "open", "x", 0644), ec);
  EXPECT_EQ(ec, mproc::errc::access_denied);
  mproc::cluster::read_cookie_file(write_cookie(dir, "blank", "  ", 0600), ec);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
  mproc::cluster::read_cookie_file(dir / "missing", ec);
  EXPECT_EQ(ec, mproc::errc::invalid_argument);
}

TEST_F(cluster, mproc_node_reports_bad_options_and_stops_in_order_on_sigterm) {
  {
    mt::subprocess bad{{MPROC_NODE_PROGRAM, "--listen", "nowhere"}};
    auto status = bad.wait(10s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2);
  }
  {
    mt::subprocess open_cookie{{MPROC_NODE_PROGRAM, "--cookie-file", write_cookie(dir, "open", "x", 0644).string()}};
    auto status = open_cookie.wait(10s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  }
  mt::subprocess good{{MPROC_NODE_PROGRAM, "--cookie-file", cookie_file.string()}};
  watchdog.add(good.pid());
  auto line = good.read_line(20s);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->rfind("mproc-node listening on 127.0.0.1:", 0), 0u) << *line;
  ASSERT_EQ(::kill(good.pid(), SIGTERM), 0);
  auto status = good.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

}  // namespace
