// Actor types that the cluster tests spawn on another node: included (by one source file each)
// by the test binaries and by cluster_node_helper.cpp (a node program of its own), so all of
// them register the same types under the same names.
#pragma once

#include <caf/all.hpp>
#include <mproc/actor_runtime.hpp>
#include <mproc/entry.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace cluster_test {

using add_atom = caf::atom_constant<caf::atom("add")>;
using pid_atom = caf::atom_constant<caf::atom("pid")>;
using hang_atom = caf::atom_constant<caf::atom("hang")>;
using tell_atom = caf::atom_constant<caf::atom("tell")>;

using calc_actor = caf::typed_actor<caf::replies_to<add_atom, int, int>::with<int>>;

inline calc_actor::behavior_type calc_impl(calc_actor::pointer, int offset) {
  return {[offset](add_atom, int a, int b) { return a + b + offset; }};
}

/// Answers its pid, never answers hang, and sends `n` to an actor whose handle it is given.
inline caf::behavior probe_impl(caf::event_based_actor* self, int) {
  return {
      [](pid_atom) { return static_cast<int>(::getpid()); },
      [self](hang_atom) { return self->make_response_promise<int>(); },
      [self](tell_atom, const caf::actor& whom, int n) { self->send(whom, n); },
  };
}

/// Process entries (MPROC_ENTRY in both programs).
inline void exit_with(int code) { std::exit(code); }
inline void sleep_for_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

/// Pool tasks.
inline int square_task(int x) { return x * x; }
inline int slow_pid_task(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return static_cast<int>(::getpid());
}
inline int failing_task(int) { throw std::runtime_error("bad input"); }

// Registered identically in both programs (each includes this header in one file).
MPROC_ACTOR(calc_impl);
MPROC_ACTOR(probe_impl);
MPROC_ENTRY(exit_with);
MPROC_ENTRY(sleep_for_ms);
MPROC_ENTRY(square_task);
MPROC_ENTRY(slow_pid_task);
MPROC_ENTRY(failing_task);

}  // namespace cluster_test
