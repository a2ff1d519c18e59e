// Actor types that the cluster tests spawn on another node: included (by one source file each)
// by the test binaries and by cluster_node_helper.cpp (a node program of its own), so all of
// them register the same types under the same names.
#pragma once

#include <caf/all.hpp>
#include <mproc/actor_runtime.hpp>
#include <mproc/entry.hpp>
#include <mproc/pipe.hpp>
#include <mproc/queue.hpp>
#include <mproc/shared_memory.hpp>
#include <mproc/wait.hpp>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>
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

/// Queues and pipes handed to a process on another node.
inline void put_numbers(mproc::queue<int> q, int n) {
  for (int i = 0; i < n; ++i) q.put(i);
}
/// Hands the queue on to a child of its own on this node, which puts.
inline void pass_on(mproc::queue<int> q, int n) {
  auto p = mproc::node::current().spawn(put_numbers, q, n);
  p.join();
}
inline void put_numbers_then_die(mproc::queue<int> q, int n) {
  put_numbers(q, n);
  ::raise(SIGKILL);
}
/// Upper-cases what comes until the stream ends, then puts "end:<errc value>".
inline void upper_case(mproc::queue_reader<std::string> in, mproc::queue<std::string> out) {
  for (;;) {
    std::error_code ec;
    auto v = in.get(ec);
    if (ec) return out.put("end:" + std::to_string(ec.value()));
    for (auto& c : *v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.put(*v);
  }
}
/// Reports what the calls of a queue from another host give (see the test).
inline void queue_calls(mproc::queue<int> q, mproc::queue<int> report) {
  std::error_code ec;
  report.put(static_cast<int>(q.qsize()));
  report.put(q.get() + q.get() + q.get());
  for (int i = 0; i < 3; ++i) q.task_done();
  q.task_done(ec);
  report.put(ec.value());
  std::vector<mproc::waitable> watched{q};
  mproc::wait(watched, std::chrono::milliseconds(0), ec);  // not for a queue on another host
  report.put(ec.value());
  q.get(std::chrono::milliseconds(100), ec);
  report.put(ec.value());
  report.put(-1);  // the test closes q now; this get waits for that
  q.get(ec);
  report.put(ec.value());
  q.put(1, ec);
  report.put(ec.value());
}
/// Reports the errors of values that cannot go into a queue on another host.
inline void put_host_handles(mproc::queue<mproc::pipe<int>> pipes, mproc::queue<mproc::queue<int>> queues,
                             mproc::queue<int> report) {
  auto put_error = [](auto& q, const auto& v) {
    try {
      q.put(v);
      return 0;
    } catch (const mproc::error& e) {
      return e.code().value();
    }
  };
  auto [a, b] = mproc::make_pipe<int>();
  report.put(put_error(pipes, a));
  report.put(put_error(queues, mproc::node::current().make_queue<int>()));
}
/// Never runs: shared memory cannot cross hosts.
inline void touch_memory(mproc::shared_memory m, mproc::queue<int> done) {
  static_cast<char*>(m.data())[0] = 1;
  done.put(1);
}
/// Sends back every block it gets, once.
inline void echo_block(mproc::queue_reader<std::vector<std::byte>> in, mproc::queue<std::vector<std::byte>> out) {
  out.put(in.get());
}
/// Answers "echo:<message>" until "quit" or the end of the stream.
inline void pipe_echo(mproc::pipe<std::string> end) {
  for (;;) {
    std::error_code ec;
    auto v = end.recv(ec);
    if (ec || *v == "quit") return;
    end.send("echo:" + *v);
  }
}
/// Sums what comes until the end of the stream.
inline void pipe_sum(mproc::pipe_reader<int> in, mproc::queue<int> out) {
  int sum = 0;
  for (;;) {
    std::error_code ec;
    auto v = in.recv(ec);
    if (ec) return out.put(sum);
    sum += *v;
  }
}

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
MPROC_ENTRY(put_numbers);
MPROC_ENTRY(put_numbers_then_die);
MPROC_ENTRY(pass_on);
MPROC_ENTRY(upper_case);
MPROC_ENTRY(queue_calls);
MPROC_ENTRY(put_host_handles);
MPROC_ENTRY(echo_block);
MPROC_ENTRY(touch_memory);
MPROC_ENTRY(pipe_echo);
MPROC_ENTRY(pipe_sum);

}  // namespace cluster_test
