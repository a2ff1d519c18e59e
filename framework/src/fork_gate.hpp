// Internal: around every fork() of the process, each registered I/O thread is parked inside a
// handler of ours, so it holds no lock at the moment of the fork — not ours, not Asio's, not the
// allocator's (g++ 12's ASan allocator has no fork handlers: children that inherited its lock
// hung). pthread_atfork drives it, so it covers every fork, mproc's and the program's own.
//
// Once the threads are parked, the gate also takes the mutexes given to hold_across_fork
// (hold_across_fork.hpp).
//
// Thread safety: registrations from any thread. Destructor: unregisters (a registration made
// before a fork is already gone from the child's registry: nothing to do there).
#pragma once

#include <boost/asio/io_context.hpp>
#include <thread>

namespace mproc::detail {

struct fork_gate_access;

class fork_gate_registration {
 public:
  /// `thread` runs `io`; a fork from that very thread does not park it.
  fork_gate_registration(boost::asio::io_context& io, std::thread::id thread);
  ~fork_gate_registration();
  fork_gate_registration(const fork_gate_registration&) = delete;
  fork_gate_registration& operator=(const fork_gate_registration&) = delete;

 private:
  friend struct fork_gate_access;
  boost::asio::io_context& io_;
  std::thread::id thread_;
};

}  // namespace mproc::detail
