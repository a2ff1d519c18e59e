// mproc/pool.hpp — a pool of worker processes (multiprocessing.Pool, ProcessPoolExecutor) that
// never hangs.
//
//   int square(int x) { return x * x; }
//   MPROC_ENTRY(square);
//   ...
//   mproc::pool pool{node, 4};                    // or pool{node, options}
//   auto r = pool.apply_async(square, 7);          // r.get() == 49
//   auto all = pool.map(square, std::vector{1, 2, 3});   // {1, 4, 9}
//   for (int v : pool.imap_unordered(square, inputs)) ...
//
// Tasks are functions registered with MPROC_ENTRY whose parameters and result are
// serializable. What Python does not give you:
//  - A worker that dies mid-task (SIGKILL, a crash, exit()) is replaced, and its chunk runs again
//    on another worker (pool_options::retries, default once) or fails with errc::worker_lost
//    naming the signal or exit code. Nothing hangs; the pool stays usable.
//  - An exception thrown by a task reaches the caller as mproc::task_error (its type name and
//    message), and the worker lives on. Every task has exactly one outcome.
//  - An initializer that throws fails the pool's constructor (no endless respawn).
//  - Long tasks never queue behind one another on a busy worker; short ones are batched.
//  - Ctrl-C (SIGINT) ends a call blocked on the pool (get, wait, map, imap's next, join) with
//    errc::interrupted, as it ends a blocked process join; the workers end with the node's other
//    children. With no call blocked the program dies of SIGINT, as usual.
//
// Thread safety: every member from any number of threads. Results' callbacks run on the pool's
// manager thread: keep them short, and do not call the pool's join() from them.
// Destructor: terminate() — workers are killed, unfinished results fail with errc::closed (as
// Python's `with Pool() as p:`). Call close() and join() first to let submitted work finish. The
// pool must be destroyed before its node.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/async_result.hpp"
#include "mproc/detail/pool_core.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/entry.hpp"
#include "mproc/error.hpp"
#include "mproc/serialization.hpp"

namespace mproc {

class node;

namespace detail {

template <class Fn>
using task_result_t = std::decay_t<typename fn_traits<std::decay_t<Fn>>::result>;
template <class Fn>
using task_args_t = typename fn_traits<std::decay_t<Fn>>::args_tuple;

template <class Fn>
std::string checked_entry(Fn fn) {
  using R = task_result_t<Fn>;
  static_assert(std::is_void_v<R> || serializable<R>, "mproc::pool: the task's result must be serializable");
  static_assert(serializable<task_args_t<Fn>>, "mproc::pool: the task's parameters must be serializable");
  return task_entry_name(fn_address(fn));
}

/// The error of a failed chunk.
inline std::exception_ptr chunk_error(const pool_result& r) {
  return std::make_exception_ptr(task_error{remote_exception{r.error_type, r.error_message}});
}

/// Decodes `n` results of type R from a chunk's values.
template <class R>
void decode_results(const pool_result& r, std::size_t n, std::vector<R>& out) {
  reader in{r.values.data(), r.values.size()};
  for (std::size_t i = 0; i < n; ++i) {
    R v{};
    decode(in, v);
    out.push_back(std::move(v));
  }
}

/// apply / apply_async: one chunk of one call.
template <class R>
class single_job final : public one_chunk_job {
 public:
  single_job(pool_task t, std::shared_ptr<result_state<R>> s) : one_chunk_job(std::move(t)), state_(std::move(s)) {}
  /// async_result::cancel(): succeeds only while no worker has the task.
  bool try_cancel() {
    if (!take_back()) return false;
    state_->set_error(std::make_exception_ptr(error(errc::cancelled, "mproc::pool: task cancelled")));
    return true;
  }
  void finished(std::uint64_t, pool_result& r) override {
    if (r.failed || r.count != 1) return state_->set_error(chunk_error(r));
    try {
      if constexpr (std::is_void_v<R>) {
        state_->set_value(true);
      } else {
        R v{};
        wire::decode_record(r.values, v);
        state_->set_value(std::move(v));
      }
    } catch (const error&) {
      state_->set_error(std::current_exception());  // a result that does not decode
    }
  }
  void abandoned(std::uint64_t, std::exception_ptr why) override { state_->set_error(why); }
  void cancel(std::exception_ptr why) override { state_->set_error(why); }  // no-op once set

 private:
  std::shared_ptr<result_state<R>> state_;
};

/// Cuts encoded argument tuples into chunks of `chunksize` for `entry`.
class chunker {
 public:
  chunker(std::string entry, std::size_t chunksize) : entry_(std::move(entry)), chunksize_(chunksize) {}
  /// Appends an item's argument tuple; true when a chunk is complete (then take() it).
  template <class Tuple>
  bool add(const Tuple& args) {
    writer w{current_.args};
    encode(w, args);
    return ++current_.count >= chunksize_;
  }
  bool empty() const noexcept { return current_.count == 0; }
  pool_task take() {
    pool_task t = std::move(current_);
    t.entry = entry_;
    current_ = {};
    return t;
  }

 private:
  std::string entry_;
  std::size_t chunksize_;
  pool_task current_;
};

/// map / map_async / starmap: every chunk encoded up front (so an encoding error is the
/// caller's), results gathered in order; the first failure to arrive is the outcome.
template <class R>
class map_job final : public pool_job {
 public:
  /// `fail_fast`: the first failure is the outcome at once, and chunks not yet handed out are
  /// dropped (chunks running finish, unseen).
  map_job(std::vector<pool_task> chunks, std::size_t items, std::shared_ptr<result_state<std::vector<R>>> s,
          bool fail_fast, std::shared_ptr<progress_meter> progress)
      : progress_(std::move(progress)),
        chunks_(std::move(chunks)),
        parts_(chunks_.size()),
        left_(chunks_.size()),
        items_(items),
        fail_fast_(fail_fast),
        state_(std::move(s)) {
    if (left_ == 0) state_->set_value({});
  }
  bool next(pool_task& t) override {
    std::lock_guard lock{mutex_};
    if (handed_ == chunks_.size()) return false;
    t = std::move(chunks_[handed_++]);
    return true;
  }
  bool exhausted() const override {
    std::lock_guard lock{mutex_};
    return handed_ == chunks_.size();
  }
  void finished(std::uint64_t seq, pool_result& r) override {
    if (progress_) progress_->add(r.count + (r.failed ? 1 : 0));  // the manager thread only
    std::unique_lock lock{mutex_};
    if (r.failed) {
      if (!error_) error_ = chunk_error(r);
    } else {
      try {
        decode_results(r, r.count, parts_[seq]);
      } catch (const error&) {
        if (!error_) error_ = std::current_exception();
      }
    }
    complete(lock);
  }
  void abandoned(std::uint64_t, std::exception_ptr why) override {
    std::unique_lock lock{mutex_};
    if (!error_) error_ = why;
    complete(lock);
  }
  void cancel(std::exception_ptr why) override {
    std::unique_lock lock{mutex_};
    if (handed_ == chunks_.size()) return;
    std::size_t never = chunks_.size() - handed_;
    handed_ = chunks_.size();
    if (!error_) error_ = why;
    complete(lock, never);
  }

 private:
  void complete(std::unique_lock<std::mutex>& lock, std::size_t chunks = 1) {
    left_ -= chunks;
    if (fail_fast_ && error_ && handed_ < chunks_.size()) {
      left_ -= chunks_.size() - handed_;  // never handed out now
      handed_ = chunks_.size();
    }
    if (fail_fast_ && error_ && !reported_) {
      reported_ = true;
      auto e = error_;
      lock.unlock();
      return state_->set_error(e);
    }
    if (left_ != 0 || reported_) return;
    auto error = error_;
    std::vector<R> all;
    if (!error) {
      all.reserve(items_);
      for (auto& p : parts_)
        for (auto& v : p) all.push_back(std::move(v));
    }
    lock.unlock();
    if (error) state_->set_error(error);
    else state_->set_value(std::move(all));
  }
  std::shared_ptr<progress_meter> progress_;
  std::vector<pool_task> chunks_;
  std::size_t handed_ = 0;
  mutable std::mutex mutex_;
  std::vector<std::vector<R>> parts_;
  std::size_t left_;
  std::size_t items_;
  bool fail_fast_;
  bool reported_ = false;
  std::exception_ptr error_;
  std::shared_ptr<result_state<std::vector<R>>> state_;
};

/// imap / imap_unordered: chunks are cut from the input as the pool can take them, at most
/// `ahead` chunks beyond what the reader has consumed (so an endless input works).
template <class R>
class imap_job final : public pool_job {
 public:
  /// `pull(chunker&)`: adds items until a chunk is complete or the input ends; false at the end.
  using pull_fn = std::function<bool(chunker&)>;
  imap_job(chunker c, pull_fn pull, std::size_t ahead, bool ordered)
      : chunker_(std::move(c)), pull_(std::move(pull)), ahead_(ahead), ordered_(ordered) {}

  bool next(pool_task& t) override {
    std::lock_guard lock{mutex_};
    if (input_done_ || handed_ - consumed_chunks_ >= ahead_) return false;
    try {
      bool more = pull_(chunker_);
      if (!more) input_done_ = true;
    } catch (...) {  // the input or an encoding failed: the stream ends with that error
      input_done_ = true;
      outcomes_.emplace(handed_, outcome{{}, std::current_exception()});
      ++handed_;
      changed_.notify_all();
      return false;
    }
    if (chunker_.empty()) return false;
    t = chunker_.take();
    ++handed_;
    return true;
  }
  bool exhausted() const override {
    std::lock_guard lock{mutex_};
    return input_done_;
  }
  void finished(std::uint64_t seq, pool_result& r) override {
    outcome o;
    try {
      decode_results(r, r.count, o.values);
      if (r.failed) o.error = chunk_error(r);
    } catch (const error&) {
      o.error = std::current_exception();
    }
    deliver(seq, std::move(o));
  }
  void abandoned(std::uint64_t seq, std::exception_ptr why) override { deliver(seq, outcome{{}, why}); }
  void cancel(std::exception_ptr why) override {
    {
      std::lock_guard lock{mutex_};
      if (input_done_) return;
      input_done_ = true;
      outcomes_.emplace(handed_++, outcome{{}, why});
    }
    changed_.notify_all();
  }

  /// The next result, waiting until `until`; nullopt at the end. Throws a task's error in turn.
  std::optional<R> next_result(std::chrono::steady_clock::time_point until) {
    std::unique_lock lock{mutex_};
    for (;;) {
      if (!current_.values.empty() || current_.error) {
        bool chunk_done = false;
        auto v = take_current(chunk_done);
        lock.unlock();
        if (chunk_done && on_consumed) on_consumed();  // outside our lock: the pool calls next()
        return v;
      }
      if (input_done_ && delivered_chunks_ == handed_) return std::nullopt;
      auto it = ordered_ ? outcomes_.find(next_seq_) : outcomes_.begin();
      if (it != outcomes_.end()) {
        current_ = std::move(it->second);
        outcomes_.erase(it);
        ++next_seq_;
        ++delivered_chunks_;
        ++consumed_chunks_;
        continue;
      }
      auto can_go_on = [&] {
        bool have = ordered_ ? outcomes_.contains(next_seq_) : !outcomes_.empty();
        return have || (input_done_ && delivered_chunks_ == handed_);
      };
      if (!interruptible_wait(changed_, lock, until, can_go_on, "mproc::pool imap: next"))
        throw error(errc::timeout, "mproc::pool imap: next");
    }
  }
  std::function<void()> on_consumed;  // tells the pool it may hand out more

 private:
  struct outcome {
    std::vector<R> values;
    std::exception_ptr error;
  };
  std::optional<R> take_current(bool& chunk_done) {
    if (!current_.values.empty()) {
      R v = std::move(current_.values.front());
      current_.values.erase(current_.values.begin());
      chunk_done = current_.values.empty() && !current_.error;
      return v;
    }
    auto e = current_.error;
    current_.error = nullptr;
    std::rethrow_exception(e);
  }
  void deliver(std::uint64_t seq, outcome o) {
    {
      std::lock_guard lock{mutex_};
      outcomes_.emplace(seq, std::move(o));
    }
    changed_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  chunker chunker_;
  pull_fn pull_;
  std::size_t ahead_;
  bool ordered_;
  bool input_done_ = false;
  std::uint64_t handed_ = 0;            // chunks cut from the input
  std::uint64_t consumed_chunks_ = 0;   // chunks the reader has started on
  std::uint64_t delivered_chunks_ = 0;
  std::uint64_t next_seq_ = 0;          // ordered: the chunk the reader needs next
  std::map<std::uint64_t, outcome> outcomes_;
  outcome current_;
};

}  // namespace detail

/// The results of imap / imap_unordered, read in turn (a single-pass input range).
///
/// Thread safety: one reader at a time. Destructor: stops reading the input; chunks already
/// handed to workers finish and are dropped.
template <class R>
class imap_result {
 public:
  using duration = std::chrono::steady_clock::duration;
  explicit imap_result(std::shared_ptr<detail::imap_job<R>> job) : job_(std::move(job)) {}

  /// The next result (IMapIterator.next); nullopt once all were read. Throws a task's error in
  /// its turn (task_error, worker_lost), and errc::timeout when `timeout` passed first.
  std::optional<R> next() { return job_->next_result(std::chrono::steady_clock::time_point::max()); }
  std::optional<R> next(duration timeout) { return job_->next_result(std::chrono::steady_clock::now() + timeout); }

  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(imap_result* r) : r_(r) { ++*this; }
    const R& operator*() const { return *value_; }
    iterator& operator++() {
      value_ = r_->next();
      if (!value_) r_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, std::default_sentinel_t) { return a.r_ == nullptr; }

   private:
    imap_result* r_ = nullptr;
    std::optional<R> value_;
  };
  iterator begin() { return iterator{this}; }
  std::default_sentinel_t end() { return {}; }

 private:
  std::shared_ptr<detail::imap_job<R>> job_;
};

class pool {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// Starts the workers (and runs the initializer in each: its error is thrown here).
  explicit pool(node& n, pool_options options = {});
  /// `workers` processes, everything else by default.
  pool(node& n, std::size_t workers);
  /// A pool whose chunks run elsewhere (mproc::cluster::make_pool: workers on other nodes).
  explicit pool(std::shared_ptr<detail::pool_engine> engine) noexcept : core_(std::move(engine)) {}
  ~pool() = default;
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  std::size_t workers() const noexcept { return core_->workers(); }

  // ---- one call ----
  /// Runs fn(args...) in a worker and waits for its result (Pool.apply).
  template <class Fn, class... Args>
  detail::task_result_t<Fn> apply(Fn fn, Args&&... args) {
    return apply_async(fn, std::forward<Args>(args)...).get();
  }
  /// Queues fn(args...); encoding errors are thrown here (Pool.apply_async).
  template <class Fn, class... Args>
  async_result<detail::task_result_t<Fn>> apply_async(Fn fn, Args&&... args) {
    auto s = std::make_shared<detail::result_state<detail::task_result_t<Fn>>>();
    return submit_call(std::move(s), fn, std::forward<Args>(args)...);
  }
  /// As apply_async, with Python's callback and error_callback (run on the manager thread).
  template <class Fn, class... Args, class OnValue, class OnError>
  async_result<detail::task_result_t<Fn>> apply_async_then(OnValue on_value, OnError on_error, Fn fn, Args&&... args);

  // ---- many calls ----
  /// fn(x) for every x of `inputs`, results in input order (Pool.map). chunksize 0: automatic,
  /// as Python (len / (4 × workers), rounded up). By default the first failure is reported once
  /// every chunk has run (as Python); with `fail_fast` at once, and chunks not yet started are
  /// dropped.
  template <class Fn, class Range>
  std::vector<detail::task_result_t<Fn>> map(Fn fn, const Range& inputs, std::size_t chunksize = 0,
                                             bool fail_fast = false) {
    return map_async(fn, inputs, chunksize, fail_fast).get();
  }
  template <class Fn, class Range>
  async_result<std::vector<detail::task_result_t<Fn>>> map_async(Fn fn, const Range& inputs, std::size_t chunksize = 0,
                                                               bool fail_fast = false) {
    return submit_map(fn, inputs, chunksize, fail_fast, [](const auto& x) { return detail::task_args_t<Fn>{x}; });
  }
  /// fn(a, b, ...) for every tuple (a, b, ...) of `inputs` (Pool.starmap).
  template <class Fn, class Range>
  std::vector<detail::task_result_t<Fn>> starmap(Fn fn, const Range& inputs, std::size_t chunksize = 0,
                                                 bool fail_fast = false) {
    return starmap_async(fn, inputs, chunksize, fail_fast).get();
  }
  template <class Fn, class Range>
  async_result<std::vector<detail::task_result_t<Fn>>> starmap_async(Fn fn, const Range& inputs,
                                                                   std::size_t chunksize = 0, bool fail_fast = false) {
    return submit_map(fn, inputs, chunksize, fail_fast,
                      [](const auto& x) { return std::apply([](const auto&... a) { return detail::task_args_t<Fn>{a...}; }, x); });
  }
  /// fn(x) for every x of `inputs`, read lazily (an endless range works: at most a few chunks
  /// per worker are read ahead of the reader), results in input order (Pool.imap). The range is
  /// kept (moved or copied) in the result.
  template <class Fn, class Range>
  imap_result<detail::task_result_t<Fn>> imap(Fn fn, Range inputs, std::size_t chunksize = 1) {
    return submit_imap(fn, std::move(inputs), chunksize, true);
  }
  /// As imap, results in completion order (Pool.imap_unordered).
  template <class Fn, class Range>
  imap_result<detail::task_result_t<Fn>> imap_unordered(Fn fn, Range inputs, std::size_t chunksize = 1) {
    return submit_imap(fn, std::move(inputs), chunksize, false);
  }

  // ---- lifetime ----
  /// No more tasks (errc::closed from now on); submitted ones finish, then workers exit.
  void close() { core_->close(); }
  /// Waits until every submitted task has its outcome and the workers have exited; after close()
  /// or terminate() (errc::invalid_argument otherwise).
  void join() { core_->join(std::chrono::steady_clock::time_point::max()); }
  /// False when `timeout` passed first.
  bool join(duration timeout) { return core_->join(std::chrono::steady_clock::now() + timeout); }
  /// Kills the workers at once; unfinished tasks fail with errc::closed. Returns within seconds.
  void terminate() { core_->terminate(); }

 private:
  template <class R, class Fn, class... Args>
  async_result<R> submit_call(std::shared_ptr<detail::result_state<R>> s, Fn fn, Args&&... args) {
    detail::pool_task t;
    t.entry = detail::checked_entry(fn);
    t.count = 1;
    writer w{t.args};
    encode(w, detail::task_args_t<Fn>{std::forward<Args>(args)...});
    auto job = std::make_shared<detail::single_job<R>>(std::move(t), s);
    s->set_canceller([weak = std::weak_ptr<detail::single_job<R>>{job}] {
      auto j = weak.lock();
      return j && j->try_cancel();
    });
    core_->submit(std::move(job));
    return async_result<R>{std::move(s)};
  }
  template <class Fn, class Range, class ToArgs>
  auto submit_map(Fn fn, const Range& inputs, std::size_t chunksize, bool fail_fast, ToArgs to_args) {
    using R = detail::task_result_t<Fn>;
    static_assert(!std::is_void_v<R>, "mproc::pool::map: the task must return a value");
    const std::size_t items = static_cast<std::size_t>(std::ranges::distance(inputs));
    if (chunksize == 0) chunksize = auto_chunksize(items);
    detail::chunker c{detail::checked_entry(fn), chunksize};
    std::vector<detail::pool_task> chunks;
    for (const auto& x : inputs)
      if (c.add(to_args(x))) chunks.push_back(c.take());
    if (!c.empty()) chunks.push_back(c.take());
    auto s = std::make_shared<detail::result_state<std::vector<R>>>();
    core_->submit(std::make_shared<detail::map_job<R>>(std::move(chunks), items, s, fail_fast,
                                                       detail::progress_meter::make(core_->options(), items)));
    return async_result<std::vector<R>>{s};
  }
  template <class Fn, class Range>
  imap_result<detail::task_result_t<Fn>> submit_imap(Fn fn, Range inputs, std::size_t chunksize, bool ordered) {
    using R = detail::task_result_t<Fn>;
    static_assert(!std::is_void_v<R>, "mproc::pool::imap: the task must return a value");
    if (chunksize == 0) chunksize = 1;
    struct source {
      Range range;
      std::ranges::iterator_t<Range> at;
      bool started = false;
    };
    auto src = std::make_shared<source>(source{std::move(inputs), {}, false});
    auto pull = [src](detail::chunker& c) {
      if (!src->started) {
        src->at = std::ranges::begin(src->range);
        src->started = true;
      }
      for (; src->at != std::ranges::end(src->range);) {
        bool full = c.add(detail::task_args_t<Fn>{*src->at});
        ++src->at;
        if (full) return true;
      }
      return false;
    };
    auto job = std::make_shared<detail::imap_job<R>>(detail::chunker{detail::checked_entry(fn), chunksize}, pull,
                                                     2 * workers() + 2, ordered);
    job->on_consumed = [core = std::weak_ptr<detail::pool_engine>{core_}] {
      if (auto c = core.lock()) c->poke();
    };
    core_->submit(job);
    return imap_result<R>{job};
  }
  std::size_t auto_chunksize(std::size_t items) const {
    std::size_t per = 4 * workers();
    return std::max<std::size_t>(1, items / per + (items % per != 0 ? 1 : 0));
  }

  std::shared_ptr<detail::pool_engine> core_;
};

template <class Fn, class... Args, class OnValue, class OnError>
async_result<detail::task_result_t<Fn>> pool::apply_async_then(OnValue on_value, OnError on_error, Fn fn,
                                                               Args&&... args) {
  // Registered before submission, so they cannot miss the outcome.
  using R = detail::task_result_t<Fn>;
  auto s = std::make_shared<detail::result_state<R>>();
  s->on_value([f = std::move(on_value)](const auto& v) {
    if constexpr (std::is_void_v<R>) f();
    else f(v);
  });
  s->on_error([f = std::move(on_error)](std::exception_ptr e) { f(e); });
  return submit_call(std::move(s), fn, std::forward<Args>(args)...);
}

}  // namespace mproc
