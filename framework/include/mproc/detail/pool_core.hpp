// mproc/detail/pool_core.hpp — the untyped machinery behind mproc::pool.
//
// Work arrives as jobs; a job hands out chunks (an entry name and `count` encoded argument
// tuples) and receives each chunk's outcome. The core runs worker processes, each with a task
// queue of its own (owned here) and one shared result queue, so it always knows which chunks a
// worker holds: when a worker dies, its first unfinished chunk was running (one attempt used),
// the others go back to the front of the line. A manager thread waits on the result queue and
// on every worker process at once (mproc::wait).
//
// How much work a worker holds ahead: one chunk while chunks take a millisecond or more (so a
// long task never waits behind another on a busy worker, as in Python's Pool), more as chunks get
// shorter, so trivial tasks are batched through the queues.
//
// Thread safety: every member from any thread. Jobs' finished/abandoned run on the manager
// thread, next() under the core's lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mproc/error.hpp"
#include "mproc/process.hpp"
#include "mproc/serialization.hpp"
#include "mproc/start_method.hpp"

namespace mproc {
class node;

/// Where a long map is (pool_options::on_progress).
struct map_progress {
  std::size_t done = 0;   ///< items with an outcome
  std::size_t total = 0;
  double elapsed = 0;     ///< seconds since the map was submitted
  double rate = 0;        ///< items per second so far
  double eta = 0;         ///< seconds left at that rate
};

/// How a pool is built (multiprocessing.Pool's arguments).
struct pool_options {
  /// Worker processes; 0 means one per CPU (std::thread::hardware_concurrency).
  std::size_t workers = 0;
  /// A worker is replaced after this many chunks (0: never), as maxtasksperchild.
  std::size_t maxtasksperchild = 0;
  /// How often a chunk whose worker died is run again, on another worker, before it fails with
  /// errc::worker_lost.
  unsigned retries = 1;
  /// The node's start method unless set.
  std::optional<start_method> method;
  /// Progress of map/starmap: called on the pool's manager thread after each chunk (keep it
  /// short). When unset and stdout is a terminal, maps that last over a second show a line
  /// "map: done/total items, rate/s, ETA" on stdout instead (progress_display = false: never).
  std::function<void(const map_progress&)> on_progress;
  bool progress_display = true;
  /// Runs first in every worker (a function registered with MPROC_ENTRY): see initializer().
  std::string initializer_entry;
  std::vector<std::byte> initializer_args;

  /// Sets the initializer: fn(args...) runs in each worker before its first task. When it throws
  /// in a worker the pool is built with, the pool's constructor throws that error instead.
  template <class Fn, class... Args>
  pool_options& initializer(Fn fn, Args&&... args);
};

namespace detail {

/// One chunk on its way to a worker.
struct pool_task {
  std::uint64_t id = 0;  // 0: stop after this (never sent as work)
  std::string entry;
  std::uint32_t count = 0;
  std::vector<std::byte> args;  // `count` argument tuples, back to back
};
template <class F>
void inspect(F& f, pool_task& x) {
  f(x.id, x.entry, x.count, x.args);
}

/// A chunk's outcome from a worker: `count` encoded results, then (if failed) what the item after
/// them threw. Id 0 is a worker's report that it started (failed: its initializer threw).
struct pool_result {
  std::uint64_t id = 0;
  std::uint32_t count = 0;
  std::vector<std::byte> values;
  bool failed = false;
  std::string error_type, error_message;
  std::uint64_t nanos = 0;  // time the chunk took in the worker
};
template <class F>
void inspect(F& f, pool_result& x) {
  f(x.id, x.count, x.values, x.failed, x.error_type, x.error_message, x.nanos);
}

class pool_job {
 public:
  virtual ~pool_job() = default;
  /// The next chunk (entry, count, args; not id), or false when none is available now.
  virtual bool next(pool_task& t) = 0;
  /// No chunk will ever come any more.
  virtual bool exhausted() const = 0;
  /// Chunk `seq` (numbered in next() order) finished: r.count results and maybe a failure.
  virtual void finished(std::uint64_t seq, pool_result& r) = 0;
  /// Chunk `seq` will have no result (worker_lost, or closed by terminate()).
  virtual void abandoned(std::uint64_t seq, std::exception_ptr why) = 0;
  /// No chunk will be taken any more (terminate()): what was not handed out fails with `why`.
  virtual void cancel(std::exception_ptr why) = 0;

  /// Chunks the core took from this job so far: the next one's `seq` (core's lock).
  std::uint64_t handed_out = 0;
};

/// A job of exactly one chunk, handed out once (apply, and a chunk another node sent us).
class one_chunk_job : public pool_job {
 public:
  explicit one_chunk_job(pool_task t) : task_(std::move(t)) {}
  bool next(pool_task& t) override {
    std::lock_guard lock{mutex_};
    if (taken_) return false;
    taken_ = true;
    t = std::move(task_);
    return true;
  }
  bool exhausted() const override {
    std::lock_guard lock{mutex_};
    return taken_;
  }

 protected:
  /// Takes the chunk away before anyone ran it (a cancel); false once handed out.
  bool take_back() {
    std::lock_guard lock{mutex_};
    if (taken_) return false;
    taken_ = true;
    return true;
  }

 private:
  mutable std::mutex mutex_;
  pool_task task_;
  bool taken_ = false;
};

/// The oldest job's next chunk into `t` (its job returned), dropping exhausted jobs wherever they
/// are (a job waiting behind its read-ahead bound must not keep finished ones in the list).
/// Null when no job has a chunk now. Engines call it under their lock.
std::shared_ptr<pool_job> next_chunk(std::deque<std::shared_ptr<pool_job>>& jobs, pool_task& t);

/// What a pool runs its jobs' chunks on: worker processes of this node (pool_core) or workers on
/// other nodes (the cluster layer). Thread safety: every member from any thread.
class pool_engine {
 public:
  virtual ~pool_engine() = default;
  /// Queues a job's chunks; errc::closed after close() or terminate().
  virtual void submit(std::shared_ptr<pool_job> job) = 0;
  /// A job that can hand out more chunks now (imap after its consumer read some).
  virtual void poke() = 0;
  virtual void close() = 0;
  /// Waits until every job is done and the workers have exited (after close or terminate;
  /// errc::invalid_argument otherwise). False when `until` passed first.
  virtual bool join(std::chrono::steady_clock::time_point until) = 0;
  /// Stops the workers; unfinished chunks are abandoned with errc::closed. Bounded in time.
  virtual void terminate() = 0;
  virtual std::size_t workers() const noexcept = 0;
  virtual const pool_options& options() const noexcept = 0;
};

/// The engine of worker processes of this node.
class pool_core final : public pool_engine {
 public:
  pool_core(node& n, pool_options options);
  ~pool_core() override;
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  void submit(std::shared_ptr<pool_job> job) override;
  void poke() override;
  void close() override;
  bool join(std::chrono::steady_clock::time_point until) override;
  /// Kills the workers; unfinished chunks are abandoned with errc::closed. Bounded in time.
  void terminate() override;
  std::size_t workers() const noexcept override;
  const pool_options& options() const noexcept override;

  struct state;

 private:
  std::shared_ptr<state> s_;
};

/// Counts a map's finished items and reports them (options.on_progress, or a line on a
/// terminal). Thread safety: add() from one thread at a time (the manager).
class progress_meter {
 public:
  /// Null when nobody would see it: no callback, and no terminal or display off.
  static std::shared_ptr<progress_meter> make(const pool_options& options, std::size_t total);
  void add(std::size_t items);

 private:
  progress_meter(std::function<void(const map_progress&)> report, std::size_t total, bool display);
  void show(const map_progress& p, bool last);
  std::function<void(const map_progress&)> report_;
  map_progress p_;
  bool display_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_shown_;
};

/// The registered name of a function (errc::unknown_entry when MPROC_ENTRY is missing, or
/// errc::invalid_argument when its result type is not serializable).
std::string task_entry_name(const void* fn);

}  // namespace detail

template <class Fn, class... Args>
pool_options& pool_options::initializer(Fn fn, Args&&... args) {
  using tuple = typename detail::fn_traits<Fn>::args_tuple;
  initializer_entry = detail::task_entry_name(detail::fn_address(fn));
  initializer_args = to_bytes(tuple{std::forward<Args>(args)...});
  return *this;
}

}  // namespace mproc
