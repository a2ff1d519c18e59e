#include "inline_runner.hpp"

#include <atomic>
#include <boost/asio/post.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/logger.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mproc::detail {
namespace {

/// Set while deliver() enqueues: where exec_later keeps the actor that this enqueue woke.
thread_local caf::resumable** woken = nullptr;

/// The runner whose batch is open on this thread (begin_batch), and the actors it woke so far.
thread_local inline_runner* batching = nullptr;
thread_local std::vector<caf::resumable*> batch;

/// Reaches the mutex and condition variable a blocking actor waits on (protected in CAF: a
/// derived class may name them; it is never instantiated).
struct blocking_waiter : caf::blocking_actor {
  static std::mutex& mutex_of(caf::blocking_actor& a) { return a.*(&blocking_waiter::mtx_); }
  static std::condition_variable& cv_of(caf::blocking_actor& a) { return a.*(&blocking_waiter::cv_); }
};

/// A response for a blocking actor (a scoped_actor waiting in receive), delivered as
/// blocking_actor::enqueue does, but woken after its mutex was released: CAF notifies with the
/// mutex held, so on one CPU the waiter preempts us, finds the mutex taken and sleeps again (two
/// more context switches per reply). Locking and unlocking before the notify keeps CAF's
/// guarantee: the waiter is either before its check of the mailbox or inside its wait.
/// A response to an actor that is gone is dropped, as CAF drops it.
void deliver_response_to_blocking(caf::blocking_actor& a, caf::mailbox_element_ptr what) {
  if (a.mailbox().push_back(std::move(what)) != caf::intrusive::inbox_result::unblocked_reader) return;
  { std::lock_guard released{blocking_waiter::mutex_of(a)}; }
  blocking_waiter::cv_of(a).notify_one();
}

enum run_state : int {
  idle,          // no inline run
  running,       // the I/O thread runs an actor
  taken_over,    // ... for too long: the watcher drives the I/O context meanwhile
  handing_back,  // the run ended; the watcher stops driving the I/O context
};

}  // namespace

/// What the I/O thread and the watcher share. The watcher thread holds it too, so it may outlive
/// the runner (it ends after the runner's destruction, once it is told).
struct inline_runner::watch {
  explicit watch(boost::asio::io_context& context) : io(context) {}

  boost::asio::io_context& io;
  std::atomic<int> state{idle};
  std::atomic<std::uint64_t> runs{0};  // inline runs begun
  std::atomic<bool> asleep{true};      // the watcher waits for the next run (or is not started)
  std::atomic<int> pending{0};         // runs posted and not finished
  std::atomic<bool> stopped{false};    // no new inline runs (shutdown)
  std::mutex mutex;
  std::condition_variable changed;
  bool started = false;   // the watcher thread exists (mutex)
  bool stopping = false;  // the watcher ends (mutex)
  bool served = false;    // the watcher stopped driving the I/O context (mutex)

  /// On the I/O thread, before a run: wakes the watcher when it sleeps.
  void begin_run(const std::shared_ptr<watch>& self) {
    runs.fetch_add(1);
    state.store(running);
    if (!asleep.load()) return;
    {
      std::lock_guard lock{mutex};
      asleep.store(false);
      if (!started) {
        started = true;
        std::thread([self] { self->watch_loop(); }).detach();
      }
    }
    changed.notify_all();
  }

  /// On the I/O thread, after a run: takes the I/O context back if the watcher drives it.
  void end_run() {
    int expected = running;
    if (state.compare_exchange_strong(expected, idle)) return;
    state.store(handing_back);
    boost::asio::post(io, [] {});  // ends the watcher's run_one()
    std::unique_lock lock{mutex};
    changed.wait(lock, [&] { return served; });
    served = false;
    state.store(idle);
  }

  void watch_loop() {
    std::unique_lock lock{mutex};
    for (;;) {
      changed.wait(lock, [&] { return stopping || !asleep.load(); });
      if (stopping) return;
      auto seen = runs.load();
      bool was_running = state.load() == running;
      if (changed.wait_for(lock, watch_period, [&] { return stopping; })) return;
      if (runs.load() != seen) continue;  // runs go on: keep watching
      if (was_running) {
        // The same run for a whole period: it blocks or computes. Drive the I/O meanwhile.
        int expected = running;
        if (state.compare_exchange_strong(expected, taken_over)) {
          lock.unlock();
          serve_io();
          lock.lock();
        }
        continue;
      }
      // A whole period without a run: sleep until the next one. begin_run() checks `asleep` after
      // counting its run, we check the count after setting `asleep`: one of us sees the other.
      asleep.store(true);
      if (runs.load() != seen) asleep.store(false);
    }
  }

  void serve_io() {
    while (state.load() == taken_over && !io.stopped()) io.run_one();
    {
      std::lock_guard lock{mutex};
      served = true;
    }
    changed.notify_all();
  }
};

inline_runner::inline_runner(caf::actor_system& sys, boost::asio::io_context& io)
    : caf::execution_unit(&sys), io_(io), watch_(std::make_shared<watch>(io)) {}

inline_runner::~inline_runner() {
  stop();
  {
    std::lock_guard lock{watch_->mutex};
    watch_->stopping = true;
  }
  watch_->changed.notify_all();
}

void inline_runner::stop() noexcept {
  watch_->stopped.store(true);
  if (io_.get_executor().running_in_this_thread()) return;  // our own posted runs come after us
  // Runs already posted or in a batch go to the scheduler now; wait for them, boundedly (a run
  // that never ends would keep the actor system from ending anyway).
  for (int i = 0; i < 2000 && watch_->pending.load() > 0 && !io_.stopped(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void inline_runner::deliver(const caf::strong_actor_ptr& dest, caf::mailbox_element_ptr what) {
  auto* actor = dest->get();
  // `dest` keeps the actor (and the condition variable notified) alive meanwhile.
  if (what->mid.is_response() && actor->getf(caf::abstract_actor::is_blocking_flag))
    return deliver_response_to_blocking(*static_cast<caf::blocking_actor*>(actor), std::move(what));
  caf::resumable* job = nullptr;
  woken = watch_->state.load() == idle && !watch_->stopped.load() ? &job : nullptr;
  dest->enqueue(std::move(what), this);
  woken = nullptr;
  if (job == nullptr) return;
  // Not run here: the connection's frame loop goes on first, and a run that blocks leaves that
  // loop free for the watcher to drive.
  if (batching == this) {
    watch_->pending.fetch_add(1);  // stop() waits for it as for a posted run
    return batch.push_back(job);
  }
  post_run(job);
}

void inline_runner::begin_batch() noexcept { batching = this; }

void inline_runner::end_batch() {
  batching = nullptr;
  // By index: a run may not add to this batch (it is closed), but the vector is reused.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    run(batch[i]);
    watch_->pending.fetch_sub(1);
  }
  batch.clear();
}

void inline_runner::post_run(caf::resumable* job, int expensive_runs) {
  watch_->pending.fetch_add(1);
  boost::asio::post(io_, [this, job, expensive_runs] {
    run(job, expensive_runs);
    watch_->pending.fetch_sub(1);
  });
}

void inline_runner::exec_later(caf::resumable* job) {
  if (woken != nullptr && *woken == nullptr) {
    *woken = job;
    return;
  }
  system().scheduler().enqueue(job);
}

void inline_runner::run(caf::resumable* job, int expensive_runs) {
  if (watch_->state.load() != idle || watch_->stopped.load()) return system().scheduler().enqueue(job);
  watch_->begin_run(watch_);
  auto began = std::chrono::steady_clock::now();
  auto result = job->resume(this, max_inline_messages);
  bool cheap = std::chrono::steady_clock::now() - began < max_cheap_run;
  // A spawn inside the run left a reference to the system's logger in this thread (CAF keeps one
  // per spawning thread); the system's destructor waits for it, and this thread outlives it.
  caf::logger::set_current_actor_system(nullptr);
  watch_->end_run();
  // As CAF's worker does: the reference CAF gave with the job goes with it to the scheduler,
  // or is dropped.
  if (result != caf::resumable::resume_later) return intrusive_ptr_release(job);
  // One expensive run may be a preemption of this thread: only a second one in a row counts.
  expensive_runs = cheap ? 0 : expensive_runs + 1;
  if (expensive_runs >= 2) return system().scheduler().enqueue(job);
  post_run(job, expensive_runs);
}

}  // namespace mproc::detail
