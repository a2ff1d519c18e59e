// The supervisor (mproc/actors/supervisor.hpp) over actors that live in processes of their own:
// a SIGKILLed process is a crashed child, and restarting the child starts a new process.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <caf/all.hpp>
#include <mproc/actor_host.hpp>
#include <mproc/actor_request.hpp>
#include <mproc/actors/directory.hpp>
#include <mproc/actors/supervisor.hpp>
#include <mproc/node.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace ma = mproc::actors;
namespace mt = mproc::test;

namespace {

using pid_atom = caf::atom_constant<caf::atom("pid")>;

caf::behavior own_process_worker(caf::event_based_actor*, int) {
  return {[](pid_atom) { return static_cast<int>(::getpid()); }};
}
MPROC_ACTOR(own_process_worker);

int pid_of_child(const std::string& name) {
  auto handle = ma::lookup(mproc::actor_system(), name);
  if (!handle) return 0;
  std::error_code ec;
  auto pid = mproc::request<int>(ec, handle, 2s, pid_atom::value);
  return ec ? 0 : *pid;
}

TEST(actor_supervisor, a_killed_child_process_is_restarted_as_a_new_process) {
  mproc::node node;
  mt::guard watchdog{30s};
  ma::supervisor_spec spec;
  spec.intensity = {3, std::chrono::seconds(10)};
  spec.children.push_back({"worker", [&node](caf::actor_system&) -> caf::expected<caf::actor> {
                             return mproc::spawn_in_process(node, own_process_worker, 0);
                           }});
  auto sup = ma::spawn_supervisor(mproc::actor_system(), spec);
  int first = pid_of_child("worker");  // the name is node-wide: the registry of the node
  ASSERT_GT(first, 0);
  ASSERT_NE(first, ::getpid());
  watchdog.add(first);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  int second = 0;
  EXPECT_TRUE(mt::eventually([&] {
    second = pid_of_child("worker");
    return second > 0 && second != first;
  }));
  watchdog.add(second);
  auto ref = mt::ref_of(second);
  // Stopping the supervisor stops the child, and its process ends with it.
  caf::scoped_actor self{mproc::actor_system()};
  self->monitor(sup);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](const caf::down_msg&) { down = true; }, caf::after(10s) >> [] {});
  EXPECT_TRUE(down);
  EXPECT_TRUE(mt::gone_within(ref, 5000ms));
}

// A child that is slow to stop: it ignores exit(user_shutdown), so the supervisor's stop of it
// waits for its shutdown bound, and says when that exit came.
std::atomic<bool> asked_to_stop{false};
// (An argument: CAF 0.17 spawns a function without one through a null pointer, which UBSan reports.)
caf::behavior slow_to_stop(caf::event_based_actor* self, int) {
  self->set_exit_handler([](caf::exit_msg&) { asked_to_stop = true; });
  return {[](pid_atom) { return static_cast<int>(::getpid()); }};
}

// In a process of its own: tells a supervisor to stop, and ends its node (returns) while the
// supervisor still waits for its child to stop, as actor_pipeline's main did now and then.
void end_node_while_a_supervisor_stops_a_child() {
  ma::supervisor_spec spec;
  spec.children.push_back({"slow", [](caf::actor_system& sys) -> caf::expected<caf::actor> { return sys.spawn(slow_to_stop, 0); },
                           ma::restart_type::permanent, std::chrono::seconds(20)});
  auto sup = ma::spawn_supervisor(mproc::actor_system(), spec);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  if (!mt::eventually([] { return asked_to_stop.load(); }, 10000ms)) throw std::runtime_error("the child was never asked to stop");
}
MPROC_ENTRY(end_node_while_a_supervisor_stops_a_child);

TEST(actor_supervisor, a_node_that_ends_while_its_supervisor_stops_a_child_ends) {
  mproc::node node;
  mt::guard watchdog{30s};
  auto p = node.spawn(end_node_while_a_supervisor_stops_a_child);
  watchdog.add(p);
  // Before the fix its actor system waited for ever for the (detached) supervisor, kept alive by
  // the response promise of its stopper, which the end of CAF's scheduler stranded.
  ASSERT_TRUE(p.join(15s)) << "the process hangs in its node's destructor";
  EXPECT_EQ(p.exitcode(), 0);
}

}  // namespace
