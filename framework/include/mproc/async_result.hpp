// mproc/async_result.hpp — the result of a pool task that may not have finished yet
// (multiprocessing.pool.AsyncResult, concurrent.futures.Future).
//
//   auto r = pool.apply_async(square, 7);
//   if (r.wait(1s)) std::cout << r.get() << '\n';     // 49
//
// get() returns the value or throws: mproc::task_error (errc::task_failed) when the task threw,
// with the exception's type name and message; errc::worker_lost when its worker died running it
// (and retries were used up); errc::closed when the pool was terminated first; errc::cancelled
// after cancel();
// errc::timeout when a timed get ran out; errc::interrupted when Ctrl-C (SIGINT) reached the node
// while get() or wait() was blocked (README, "Lifetime rules").
//
// Thread safety: every member from any number of threads; get() may be called many times (it
// copies the value). Destructor: releases this handle; the task runs on regardless.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mproc/detail/program_wait.hpp"
#include "mproc/error.hpp"
#include "mproc/process.hpp"

namespace mproc {

/// A task's exception, as the pool caller sees it: code() is errc::task_failed.
class task_error : public error {
 public:
  explicit task_error(remote_exception e)
      : error(errc::task_failed, e.type + (e.message.empty() ? "" : ": " + e.message)), exception_(std::move(e)) {}
  /// The type name and message of what the task threw.
  const remote_exception& exception() const noexcept { return exception_; }

 private:
  remote_exception exception_;
};

namespace detail {

/// The shared state of one async_result: a value or an error, set once.
template <class R>
class result_state {
 public:
  using value_type = std::conditional_t<std::is_void_v<R>, bool, R>;

  // Callbacks run before waiters wake (as Python's AsyncResult): once wait() returns, they ran.
  void set_value(value_type v) {
    std::unique_lock lock{mutex_};
    if (settled_) return;
    value_ = std::move(v);
    settle(lock, on_value_);
  }
  void set_error(std::exception_ptr e) {
    std::unique_lock lock{mutex_};
    if (settled_) return;
    error_ = std::move(e);
    settle(lock, on_error_);
  }
  bool ready() const {
    std::lock_guard lock{mutex_};
    return done_;
  }
  /// False when `until` passed first; errc::interrupted on Ctrl-C.
  bool wait_until(std::chrono::steady_clock::time_point until) const {
    std::unique_lock lock{mutex_};
    return interruptible_wait(ready_, lock, until, [&] { return done_; }, "mproc::async_result: wait");
  }
  /// Waits; then the value, or rethrows the error.
  value_type get() const {
    std::unique_lock lock{mutex_};
    interruptible_wait(ready_, lock, std::chrono::steady_clock::time_point::max(), [&] { return done_; },
                       "mproc::async_result: get");
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  /// What cancel() does: set by the pool when it queues the task.
  void set_canceller(std::function<bool()> f) {
    std::lock_guard lock{mutex_};
    canceller_ = std::move(f);
  }
  bool cancel() {
    std::function<bool()> f;
    {
      std::lock_guard lock{mutex_};
      if (settled_ || !canceller_) return false;
      f = canceller_;
    }
    return f();
  }
  bool successful() const {
    std::lock_guard lock{mutex_};
    if (!done_) throw error(errc::invalid_argument, "mproc::async_result::successful: not ready");
    return !error_;
  }
  std::exception_ptr error_ptr() const {
    std::lock_guard lock{mutex_};
    return error_;
  }
  /// Runs `f` when the value is set (at once if it is already): Python's callback.
  void on_value(std::function<void(const value_type&)> f) {
    std::unique_lock lock{mutex_};
    if (!settled_) return on_value_.push_back([this, f] { f(*value_); });
    bool run = !error_;
    lock.unlock();
    if (run) f(*value_);
  }
  void on_error(std::function<void(std::exception_ptr)> f) {
    std::unique_lock lock{mutex_};
    if (!settled_) return on_error_.push_back([this, f] { f(error_); });
    auto e = error_;
    lock.unlock();
    if (e) f(e);
  }

 private:
  /// Runs the callbacks (unlocked; value_ and error_ no longer change), then wakes waiters.
  void settle(std::unique_lock<std::mutex>& lock, std::vector<std::function<void()>>& callbacks) {
    settled_ = true;
    auto run = std::move(callbacks);
    on_value_.clear();
    on_error_.clear();
    lock.unlock();
    for (auto& f : run) f();
    lock.lock();
    done_ = true;
    lock.unlock();
    ready_.notify_all();
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable ready_;
  bool settled_ = false;  // value or error stored; callbacks may be running
  bool done_ = false;     // and they ran: waiters may go
  std::optional<value_type> value_;
  std::exception_ptr error_;
  std::vector<std::function<void()>> on_value_, on_error_;
  std::function<bool()> canceller_;
};

}  // namespace detail

template <class R>
class async_result {
 public:
  using duration = std::chrono::steady_clock::duration;
  async_result() = default;
  explicit async_result(std::shared_ptr<detail::result_state<R>> s) : state_(std::move(s)) {}

  bool valid() const noexcept { return state_ != nullptr; }
  /// True once the task has an outcome.
  bool ready() const { return state().ready(); }
  void wait() const { state().wait_until(std::chrono::steady_clock::time_point::max()); }
  /// False when `timeout` passed first.
  bool wait(duration timeout) const { return state().wait_until(std::chrono::steady_clock::now() + timeout); }
  /// The value (waiting for it), or throws the task's error; see the header comment.
  R get() const {
    if constexpr (std::is_void_v<R>) state().get();
    else return state().get();
  }
  /// Waits at most `timeout`; throws errc::timeout when it passed first.
  R get(duration timeout) const {
    if (!wait(timeout)) throw error(errc::timeout, "mproc::async_result::get");
    return get();
  }
  /// Cancels the task if no worker has taken it yet (Future.cancel): true then, and get() throws
  /// errc::cancelled. False once it runs or has run.
  bool cancel() { return state().cancel(); }
  /// Whether the task succeeded; errc::invalid_argument before it is ready (Python: ValueError).
  bool successful() const { return state().successful(); }

 private:
  detail::result_state<R>& state() const {
    if (!state_) throw error(errc::invalid_argument, "mproc::async_result: empty handle");
    return *state_;
  }
  std::shared_ptr<detail::result_state<R>> state_;
};

}  // namespace mproc
