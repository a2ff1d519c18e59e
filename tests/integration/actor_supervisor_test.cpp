// The supervisor (mproc/actors/supervisor.hpp) over actors that live in processes of their own:
// a SIGKILLed process is a crashed child, and restarting the child starts a new process.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

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

}  // namespace
