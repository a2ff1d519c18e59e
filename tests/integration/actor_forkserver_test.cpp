// Regression: a process's first use of actors starts its fork server (before CAF's threads). It
// used to fork that server while holding the actor runtime's lock, so every process the server
// started inherited the lock held and hung on its own first use of actors.
#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <mproc/actor_request.hpp>
#include <mproc/actor_runtime.hpp>
#include <mproc/node.hpp>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace mt = mproc::test;

namespace {

/// Exits 0 when an actor of this process computes 41 + 1.
void use_actors(int) {
  auto plus_one = mproc::actor_system().spawn(
      [](caf::event_based_actor*, int) -> caf::behavior { return {[](int x) { return x + 1; }}; }, 0);
  int got = mproc::request<int>(plus_one, 10s, 41);
  caf::anon_send_exit(plus_one, caf::exit_reason::user_shutdown);
  if (got != 42) std::exit(2);
}
MPROC_ENTRY(use_actors);

/// Uses actors first, single-threaded until then (no queue, no pipe: nothing else starts a
/// thread), which starts this process's fork server; then starts a child that uses actors.
void use_actors_then_start_a_child(int) {
  use_actors(0);
  auto child = mproc::node::current().spawn(use_actors, 0);
  child.join();
  std::exit(child.exitcode().value_or(4) == 0 ? 0 : 3);
}
MPROC_ENTRY(use_actors_then_start_a_child);

TEST(actor_forkserver, a_process_started_after_the_first_use_of_actors_can_use_actors) {
  mproc::node node{mt::with_method(mproc::start_method::forkserver)};
  mt::guard watchdog{30s};
  auto p = node.spawn(use_actors_then_start_a_child, 0);
  watchdog.add(p);
  EXPECT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

}  // namespace
