// Internal: runs an idle actor that a frame from another process woke right on the mailbox I/O
// thread, instead of waking a CAF scheduler thread for it (router.hpp).
//
// Why: on one CPU, handing the message to a scheduler thread costs a wake-up and, since CAF
// notifies its worker with the lock held, two more context switches; the reply then leaves from
// that worker. Run inline, the actor answers from the thread that read the request.
//
// How: deliver() enqueues with this execution unit; when the enqueue wakes an idle actor, CAF
// hands the actor to exec_later(), which keeps it. It then runs on the I/O thread outside the
// connection's frame loop (after it, within a batch; else in a posted handler), for at most
// `max_inline_messages`. An actor with more left runs again in a handler posted behind the I/O
// thread's other work, unless two runs in a row were expensive (`max_cheap_run` or longer; one
// may be a preemption): a stream of small messages then costs no hand-over between the I/O
// thread and a scheduler thread (which, on two CPUs shared with the sender, made one-way
// throughput swing between 0.7M and 1.5M msg/s with the threads' placement). An expensive actor
// goes to the scheduler, so actors that compute still run in parallel on CAF's threads.
// Everything else given to exec_later (actors spawned or woken by an actor that runs here) goes
// to the scheduler too.
//
// A response for a blocking actor (a scoped_actor waiting in receive) is pushed into its mailbox
// and the waiter woken after its mutex was released: CAF's own enqueue notifies with the mutex
// held, which on one CPU costs two more context switches per reply.
//
// A handler that blocks or runs long (a blocking request, a lookup, a queue get: they all wait for
// this very I/O thread) must not stall the process's I/O. A watcher thread, awake only while
// inline runs happen, looks every `watch_period`; a run it sees twice is taken over: the watcher
// itself drives the I/O context until the run ends, and the I/O thread takes it back then. So a
// blocking handler costs at most ~2 periods of I/O latency, never a deadlock. While taken over,
// deliveries go to the scheduler.
//
// Thread safety: deliver() on the thread running the I/O context's handlers, or on a thread that
// reads a connection in its place (connection::borrow_reading; the run it wakes is posted to the
// I/O thread all the same); exec_later and stop from any thread. Destructor: stop(), and tells the watcher to end (it ends once no run is taken
// over any more).
#pragma once

#include <boost/asio/io_context.hpp>
#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/mailbox_element.hpp>
#include <chrono>
#include <cstddef>
#include <memory>

namespace mproc::detail {

class inline_runner final : public caf::execution_unit {
 public:
  static constexpr std::size_t max_inline_messages = 32;
  static constexpr std::chrono::microseconds watch_period{1000};
  /// Wall-clock time of a run under which it counts as cheap (a preempted run looks expensive:
  /// so two in a row send an actor to the scheduler, until its mailbox is empty, as before).
  static constexpr std::chrono::microseconds max_cheap_run{50};

  inline_runner(caf::actor_system& sys, boost::asio::io_context& io);
  ~inline_runner() override;
  inline_runner(const inline_runner&) = delete;
  inline_runner& operator=(const inline_runner&) = delete;

  /// Enqueues `what` to the local actor `dest`; an actor this wakes runs soon on this thread.
  void deliver(const caf::strong_actor_ptr& dest, caf::mailbox_element_ptr what);

  /// Around the frames of one read on the thread that runs the I/O context (connection's read
  /// hooks): an actor that deliver() wakes in between runs at end_batch(), once the connection's
  /// next read is on its way, instead of in a posted handler, which cost the I/O thread a turn of
  /// its epoll (a syscall) before every run. Not nested.
  void begin_batch() noexcept;
  void end_batch();

  void exec_later(caf::resumable* job) override;

  /// No new inline runs; waits (up to 2 s) for the posted ones, which go to the scheduler now.
  /// Call before the actor system ends, not from a run.
  void stop() noexcept;

 private:
  struct watch;
  /// `expensive_runs`: how many runs of this actor in a row took max_cheap_run or longer.
  void run(caf::resumable* job, int expensive_runs = 0);
  void post_run(caf::resumable* job, int expensive_runs = 0);

  boost::asio::io_context& io_;
  std::shared_ptr<watch> watch_;
};

}  // namespace mproc::detail
