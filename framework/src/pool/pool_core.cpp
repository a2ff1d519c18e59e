#include "mproc/detail/pool_core.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <unordered_map>
#include <mutex>
#include <thread>

#include <unistd.h>
#include <cstdio>

#include "../bootstrap.hpp"
#include "../internal_wait.hpp"
#include "mproc/async_result.hpp"
#include "mproc/detail/program_wait.hpp"
#include "mproc/entry.hpp"
#include "mproc/node.hpp"
#include "mproc/queue.hpp"
#include "mproc/pool.hpp"
#include "mproc/wait.hpp"

// ---- the worker process -------------------------------------------------------------------

namespace mproc::detail {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Runs one chunk: each argument tuple through the entry's task invoker, results back to back.
pool_result run_chunk(const entry_info& entry, const pool_task& t) {
  pool_result r;
  r.id = t.id;
  auto t0 = clock_type::now();
  reader args{t.args.data(), t.args.size()};
  writer out{r.values};
  try {
    for (; r.count < t.count; ++r.count) entry.run_task(entry.fn, args, out);
  } catch (...) {
    auto e = current_exception_info();
    r.failed = true;
    r.error_type = std::move(e.type);
    r.error_message = std::move(e.message);
  }
  r.nanos = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count());
  return r;
}

}  // namespace

/// A worker: reports that it started (after the initializer), then runs chunks until its task
/// queue is closed and drained, or it ran `maxtasks` of them.
void pool_worker(queue_reader<pool_task> tasks, queue<pool_result> results, std::uint64_t maxtasks,
                 std::string init_entry, std::vector<std::byte> init_args) {
  pool_result hello;
  if (!init_entry.empty()) {
    try {
      const entry_info* init = find_entry_by_name(entry_kind::function, init_entry);
      if (init == nullptr) throw error(errc::unknown_entry, "pool initializer " + init_entry);
      init->invoke(init->fn, init_args);
    } catch (...) {
      auto e = current_exception_info();
      hello.failed = true;
      hello.error_type = std::move(e.type);
      hello.error_message = std::move(e.message);
      results.put(hello);
      return;
    }
  }
  results.put(hello);
  std::map<std::string, const entry_info*> entries;
  for (std::uint64_t done = 0; maxtasks == 0 || done < maxtasks; ++done) {
    std::error_code ec;
    auto t = tasks.get(ec);
    if (ec) return;  // closed and drained: the pool is done with us (or it is gone)
    const entry_info*& entry = entries[t->entry];
    if (entry == nullptr) entry = find_entry_by_name(entry_kind::function, t->entry);
    if (entry == nullptr || entry->run_task == nullptr) {
      pool_result r;
      r.id = t->id;
      r.failed = true;
      r.error_type = "mproc::error";
      r.error_message = "no task entry named " + t->entry + " in the worker";
      results.put(r);
      continue;
    }
    results.put(run_chunk(*entry, *t));
  }
}

}  // namespace mproc::detail

// Registered by hand: MPROC_ENTRY names an entry after its spelling, and this one lives in a
// namespace. Same translation unit as the code that starts it, so a static library keeps it.
[[maybe_unused]] static const ::mproc::detail::function_registrar<decltype(&mproc::detail::pool_worker)>
    mproc_pool_worker_registrar{"mproc::pool_worker", &mproc::detail::pool_worker};

// ---- the core in the pool's process ---------------------------------------------------------

namespace mproc::detail {
namespace {

constexpr std::size_t max_window = 4096;
/// A worker holds about this much work ahead.
constexpr double ahead_nanos = 1e6;

struct worker_slot {
  process proc;
  queue<pool_task> tasks;
  std::deque<std::uint64_t> unfinished;  // chunk ids in the order sent
  std::uint64_t assigned = 0;            // chunks ever sent (for maxtasksperchild)
  bool started = false;                  // its hello arrived
  bool stopping = false;                 // its queue was closed
};

struct chunk_record {
  std::shared_ptr<pool_job> job;
  std::uint64_t seq = 0;
  pool_task task;  // kept for a retry
  unsigned attempts = 0;
  worker_slot* worker = nullptr;  // holding it now
};

}  // namespace

std::shared_ptr<pool_job> next_chunk(std::deque<std::shared_ptr<pool_job>>& jobs, pool_task& t) {
  for (auto it = jobs.begin(); it != jobs.end();) {
    if ((*it)->exhausted()) it = jobs.erase(it);
    else if ((*it)->next(t)) return *it;
    else ++it;
  }
  return nullptr;
}

struct pool_core::state : std::enable_shared_from_this<pool_core::state> {
  node& n;
  pool_options options;
  std::size_t size = 0;

  std::mutex mutex;
  std::condition_variable changed;
  queue<pool_result> results;
  std::vector<std::unique_ptr<worker_slot>> workers;
  // Workers terminate() took away while the manager may still be waiting on them.
  std::vector<std::unique_ptr<worker_slot>> retired;
  std::deque<std::shared_ptr<pool_job>> jobs;            // with chunks still to hand out, FIFO
  std::unordered_map<std::uint64_t, chunk_record> inflight;  // by chunk id
  std::deque<std::uint64_t> retry;                       // chunk ids to send again first
  std::uint64_t next_id = 0;
  double chunk_nanos = ahead_nanos;                      // recent average time per chunk
  bool closed = false;
  bool terminated = false;
  std::exception_ptr broken;                             // a replacement worker's initializer threw
  std::vector<std::shared_ptr<pool_job>> cancelled;      // to be told, outside the lock
  std::exception_ptr cancel_why;
  std::atomic<bool> stop{false};
  std::thread manager;

  state(node& nd, pool_options o) : n(nd), options(std::move(o)), results(nd) {
    size = options.workers != 0 ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  }

  std::size_t window() const noexcept {
    return std::clamp<std::size_t>(static_cast<std::size_t>(ahead_nanos / std::max(chunk_nanos, 1.0)), 1, max_window);
  }

  /// Starts a worker (lock held).
  void start_worker() {
    auto w = std::make_unique<worker_slot>();
    w->tasks = queue<pool_task>{n};
    w->proc = process{n, &pool_worker, w->tasks.reader(), results,
                      static_cast<std::uint64_t>(options.maxtasksperchild), options.initializer_entry,
                      options.initializer_args};
    if (options.method) w->proc.set_start_method(*options.method);
    w->proc.set_daemon(true);
    w->proc.start();
    workers.push_back(std::move(w));
  }

  /// Hands out chunks to workers with room (lock held).
  void dispatch() {
    if (terminated) return;
    const std::size_t win = window();
    for (;;) {
      worker_slot* best = nullptr;
      for (auto& w : workers) {
        if (w->stopping || w->unfinished.size() >= win) continue;
        if (options.maxtasksperchild != 0 && w->assigned >= options.maxtasksperchild) continue;
        if (best == nullptr || w->unfinished.size() < best->unfinished.size()) best = w.get();
      }
      if (best == nullptr) return;
      std::uint64_t id = 0;
      if (!retry.empty()) {
        id = retry.front();
        retry.pop_front();
      } else {
        pool_task t;
        auto job = next_chunk(jobs, t);
        if (!job) return;
        id = ++next_id;
        t.id = id;
        inflight[id] = chunk_record{job, job->handed_out++, std::move(t), 0};
      }
      auto& rec = inflight.at(id);
      rec.worker = best;
      best->unfinished.push_back(id);
      ++best->assigned;
      best->tasks.put(rec.task);
      // A worker that reached maxtasksperchild gets nothing more: close its queue so it exits.
      if (options.maxtasksperchild != 0 && best->assigned >= options.maxtasksperchild) stop_worker(*best);
    }
  }

  void stop_worker(worker_slot& w) {
    if (w.stopping) return;
    w.stopping = true;
    std::error_code ignored;
    w.tasks.close(ignored);
  }

  /// A result arrived (manager thread, lock held on entry; released around the job's callback).
  void on_result(pool_result& r, std::unique_lock<std::mutex>& lock) {
    if (r.id == 0) {
      if (r.failed && !broken)
        broken = std::make_exception_ptr(task_error{remote_exception{r.error_type, r.error_message}});
      return;
    }
    auto it = inflight.find(r.id);
    if (it == inflight.end()) return;  // a retried chunk's first run finished after all
    auto rec = std::move(it->second);
    inflight.erase(it);
    if (auto* w = rec.worker) {  // results of one worker come in the order it got the chunks
      if (!w->unfinished.empty() && w->unfinished.front() == r.id) w->unfinished.pop_front();
      else std::erase(w->unfinished, r.id);
    }
    chunk_nanos = 0.8 * chunk_nanos + 0.2 * static_cast<double>(r.nanos);
    dispatch();
    lock.unlock();
    rec.job->finished(rec.seq, r);
    lock.lock();
  }

  /// A worker process ended (manager thread, lock held).
  void on_exit(std::size_t index, std::vector<std::pair<chunk_record, std::exception_ptr>>& lost) {
    auto w = std::move(workers[index]);
    workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(index));
    w->proc.join();
    const int code = w->proc.exitcode().value_or(-1);
    bool first = true;
    std::deque<std::uint64_t> again;
    for (std::uint64_t id : w->unfinished) {
      auto it = inflight.find(id);
      if (it == inflight.end()) continue;
      // The first unfinished chunk was running (or about to): that costs an attempt.
      if (first && ++it->second.attempts > options.retries) {
        std::string why = code < 0 ? "signal " + std::to_string(-code) : "exit code " + std::to_string(code);
        lost.emplace_back(std::move(it->second),
                          std::make_exception_ptr(error(errc::worker_lost, "pool worker died running the task (" + why + ")")));
        inflight.erase(it);
      } else {
        it->second.worker = nullptr;
        again.push_back(id);
      }
      first = false;
    }
    retry.insert(retry.begin(), again.begin(), again.end());
    if (terminated || broken || (closed && all_done())) return;
    try {
      start_worker();
    } catch (const error&) {
      // No replacement (SIGINT reached the node, or it is closing): the pool's work fails with
      // that error instead of an exception escaping this thread.
      broken = std::current_exception();
    }
  }

  bool jobs_done() const {
    return std::all_of(jobs.begin(), jobs.end(), [](const auto& j) { return j->exhausted(); });
  }
  bool all_done() const { return inflight.empty() && retry.empty() && jobs_done(); }

  /// Fails everything unfinished (lock held); the callbacks run later, unlocked.
  void abandon_all(std::exception_ptr why, std::vector<std::pair<chunk_record, std::exception_ptr>>& lost) {
    cancel_why = why;
    for (auto& [id, rec] : inflight) lost.emplace_back(std::move(rec), why);
    inflight.clear();
    retry.clear();
    for (auto& j : jobs) cancelled.push_back(j);
    jobs.clear();
  }

  void run_manager() {
    // Its joins of workers are the pool's business: a Ctrl-C belongs to the program's calls.
    internal_wait_scope internal;
    std::vector<std::pair<chunk_record, std::exception_ptr>> lost;
    while (!stop) {
      std::vector<waitable> watch;
      {
        std::lock_guard lock{mutex};
        watch.reserve(workers.size() + 1);
        watch.emplace_back(results);
        for (auto& w : workers) watch.emplace_back(w->proc);
      }
      std::error_code ec;
      auto ready = mproc::wait(watch, 50ms, ec);
      watch.clear();
      std::unique_lock lock{mutex};
      for (;;) {
        std::error_code gec;
        auto r = results.get(std::chrono::steady_clock::duration::zero(), gec);
        if (!r) break;
        on_result(*r, lock);
      }
      for (std::size_t i = workers.size(); i-- > 0;)
        if (!workers[i]->proc.is_alive()) on_exit(i, lost);
      if (broken) abandon_all(broken, lost);
      if (closed && all_done())
        for (auto& w : workers) stop_worker(*w);
      dispatch();
      lock.unlock();
      changed.notify_all();
      tell(lost);
    }
  }

  /// Tells jobs what they lost (without the lock).
  void tell(std::vector<std::pair<chunk_record, std::exception_ptr>>& lost) {
    for (auto& [rec, why] : lost) rec.job->abandoned(rec.seq, why);
    lost.clear();
    std::vector<std::shared_ptr<pool_job>> jobs_to_cancel;
    std::exception_ptr why;
    {
      std::lock_guard lock{mutex};
      jobs_to_cancel.swap(cancelled);
      why = cancel_why;
    }
    for (auto& j : jobs_to_cancel) j->cancel(why);
  }
};

pool_core::pool_core(node& n, pool_options options) : s_(std::make_shared<state>(n, std::move(options))) {
  std::unique_lock lock{s_->mutex};
  for (std::size_t i = 0; i < s_->size; ++i) s_->start_worker();
  if (!s_->options.initializer_entry.empty()) {
    // Every worker reports after its initializer: one that threw fails the construction.
    std::size_t hellos = 0;
    while (hellos < s_->size) {
      auto r = s_->results.get(std::chrono::seconds(60));
      if (r.id != 0) continue;
      ++hellos;
      if (r.failed) {
        lock.unlock();
        terminate();
        throw task_error{remote_exception{r.error_type, r.error_message}};
      }
    }
  }
  s_->manager = std::thread{[s = s_.get()] { s->run_manager(); }};
}

pool_core::~pool_core() {
  terminate();
  s_->stop = true;
  std::error_code ignored;
  s_->results.put(pool_result{}, ignored);  // wakes the manager from its wait at once
  if (s_->manager.joinable()) s_->manager.join();
}

void pool_core::submit(std::shared_ptr<pool_job> job) {
  std::lock_guard lock{s_->mutex};
  if (s_->closed || s_->terminated) throw error(errc::closed, "mproc::pool: closed");
  if (s_->broken) std::rethrow_exception(s_->broken);
  s_->jobs.push_back(std::move(job));
  s_->dispatch();
}

void pool_core::poke() {
  std::lock_guard lock{s_->mutex};
  s_->dispatch();
}

void pool_core::close() {
  std::lock_guard lock{s_->mutex};
  s_->closed = true;
}

bool pool_core::join(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock{s_->mutex};
  if (!s_->closed && !s_->terminated)
    throw error(errc::invalid_argument, "mproc::pool::join: close() or terminate() first");
  return interruptible_wait(s_->changed, lock, until, [&] { return s_->workers.empty() && s_->all_done(); },
                            "mproc::pool::join");
}

void pool_core::terminate() {
  std::vector<std::pair<chunk_record, std::exception_ptr>> lost;
  std::vector<std::unique_ptr<worker_slot>> dead;
  {
    std::lock_guard lock{s_->mutex};
    if (s_->terminated) return;
    s_->terminated = s_->closed = true;
    s_->abandon_all(std::make_exception_ptr(error(errc::closed, "mproc::pool terminated")), lost);
    dead = std::move(s_->workers);
    s_->workers.clear();
  }
  {
    // Waits of the pool's own, also on the caller's thread (the destructor after a Ctrl-C, say):
    // no interrupt ends them early or is taken from the program.
    internal_wait_scope internal;
    for (auto& w : dead) {
      std::error_code ec;
      w->proc.kill(ec);
    }
    for (auto& w : dead) {
      std::error_code ec;
      w->proc.join(std::chrono::seconds(5), ec);
    }
  }
  {
    std::lock_guard lock{s_->mutex};
    for (auto& w : dead) s_->retired.push_back(std::move(w));
  }
  s_->tell(lost);
  s_->changed.notify_all();
}

std::size_t pool_core::workers() const noexcept { return s_->size; }
const pool_options& pool_core::options() const noexcept { return s_->options; }

std::shared_ptr<progress_meter> progress_meter::make(const pool_options& options, std::size_t total) {
  const bool display = !options.on_progress && options.progress_display && ::isatty(STDOUT_FILENO) == 1;
  if (!options.on_progress && !display) return nullptr;
  return std::shared_ptr<progress_meter>{new progress_meter{options.on_progress, total, display}};
}

progress_meter::progress_meter(std::function<void(const map_progress&)> report, std::size_t total, bool display)
    : report_(std::move(report)), display_(display), start_(clock_type::now()), last_shown_(start_) {
  p_.total = total;
}

void progress_meter::add(std::size_t items) {
  auto now = clock_type::now();
  p_.done += items;
  p_.elapsed = std::chrono::duration<double>(now - start_).count();
  p_.rate = p_.elapsed > 0 ? static_cast<double>(p_.done) / p_.elapsed : 0;
  p_.eta = p_.rate > 0 ? static_cast<double>(p_.total - std::min(p_.done, p_.total)) / p_.rate : 0;
  if (report_) return report_(p_);
  // On a terminal: nothing for the first second, then at most ten lines a second, each over the
  // last ("\r"), and a newline at the end.
  const bool last = p_.done >= p_.total;
  if (now - start_ < 1s && !shown_) return;
  if (!last && now - last_shown_ < 100ms) return;
  last_shown_ = now;
  show(p_, last);
}

void progress_meter::show(const map_progress& p, bool last) {
  shown_ = true;
  std::printf("\rmap: %zu/%zu items, %.0f/s, ETA %.0fs   %s", p.done, p.total, p.rate, p.eta, last ? "\n" : "");
  std::fflush(stdout);
}

std::string task_entry_name(const void* fn) {
  const entry_info* e = find_entry_by_fn(fn);
  if (e == nullptr) throw error(errc::unknown_entry, "mproc::pool: the function is not registered (MPROC_ENTRY)");
  return e->name;
}

}  // namespace mproc::detail

namespace mproc {
pool::pool(node& n, pool_options options) : core_(std::make_shared<detail::pool_core>(n, std::move(options))) {}
pool::pool(node& n, std::size_t workers) : pool(n, [workers] {
  pool_options o;
  o.workers = workers;
  return o;
}()) {}
}  // namespace mproc
