// mproc::cluster::make_pool: a pool engine that hands chunks to other nodes' agents.
#include <caf/all.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "chunk_server.hpp"
#include "encoded.hpp"
#include "mproc/cluster_pool.hpp"
#include "mproc/detail/program_wait.hpp"

namespace mproc::cluster {
namespace {

using mproc::detail::pool_job;
using mproc::detail::pool_result;
using mproc::detail::pool_task;
using send_atom = caf::atom_constant<caf::atom("mp_send")>;

/// Worker processes each node runs for this pool (options.workers; 0: 2).
std::size_t workers_per_node(const pool_options& options) { return options.workers == 0 ? 2 : options.workers; }
/// Chunks a node holds at most per worker: one running, one waiting behind it.
constexpr std::size_t chunks_per_worker = 2;

struct remote_slot {
  caf::actor agent;
  std::string name;  // host:port, for messages
  std::size_t in_flight = 0;
  bool alive = true;
};

struct chunk_record {
  std::shared_ptr<pool_job> job;
  std::uint64_t seq = 0;
  pool_task task;  // kept for a retry
  unsigned attempts = 0;
  std::size_t slot = 0;
};

struct outgoing {
  std::size_t slot;
  std::uint64_t id;
  std::string bytes;
};

using lost_list = std::vector<std::pair<chunk_record, std::exception_ptr>>;

class remote_engine final : public mproc::detail::pool_engine, public std::enable_shared_from_this<remote_engine> {
 public:
  remote_engine(std::vector<remote_slot> slots, pool_options options)
      : slots_(std::move(slots)), options_(std::move(options)) {}

  ~remote_engine() override {
    terminate();
    caf::anon_send_exit(courier_, caf::exit_reason::user_shutdown);
  }

  /// The actor that sends chunks and gets their answers (a request needs an actor); it watches
  /// the agents to learn of a lost node.
  void start() {
    std::weak_ptr<remote_engine> weak = weak_from_this();
    std::vector<caf::actor> agents;
    for (auto& s : slots_) agents.push_back(s.agent);
    courier_ = actor_system().spawn([weak, agents](caf::event_based_actor* self, int) -> caf::behavior {
      for (auto& a : agents) self->monitor(a);
      self->set_down_handler([weak](caf::down_msg& dm) {
        if (auto e = weak.lock()) e->on_node_lost(dm.source, dm.reason);
      });
      return {[self, weak](send_atom, std::uint64_t slot, std::uint64_t id, const caf::actor& agent,
                           const std::string& bytes, std::uint32_t workers) {
        self->request(agent, caf::infinite, cluster::detail::run_chunk_atom::value, bytes, workers)
            .then(
                [weak, id](std::string& result) {
                  if (auto e = weak.lock()) e->on_result(id, result);
                },
                [weak, slot, id](caf::error& err) {
                  if (auto e = weak.lock()) e->on_failure(static_cast<std::size_t>(slot), id, err);
                });
      }};
    }, 0);
  }

  void submit(std::shared_ptr<pool_job> job) override {
    std::vector<outgoing> out;
    {
      std::lock_guard lock{mutex_};
      if (closed_ || terminated_) throw error(errc::closed, "mproc::pool: closed");
      if (no_node_left()) throw error(errc::node_lost, "mproc::cluster pool: every node is lost");
      jobs_.push_back(std::move(job));
      dispatch(out);
    }
    send(out);
  }

  void poke() override {
    std::vector<outgoing> out;
    {
      std::lock_guard lock{mutex_};
      dispatch(out);
    }
    send(out);
  }

  void close() override {
    std::lock_guard lock{mutex_};
    closed_ = true;
    changed_.notify_all();
  }

  bool join(std::chrono::steady_clock::time_point until) override {
    std::unique_lock lock{mutex_};
    if (!closed_ && !terminated_) throw error(errc::invalid_argument, "mproc::pool::join before close() or terminate()");
    // As a local pool's join: a call of the program, which Ctrl-C interrupts.
    return mproc::detail::interruptible_wait(changed_, lock, until, [&] { return all_done(); }, "mproc::pool::join");
  }

  void terminate() override {
    lost_list lost;
    std::vector<std::shared_ptr<pool_job>> cancelled;
    auto why = std::make_exception_ptr(error(errc::closed, "mproc::pool: terminated"));
    {
      std::lock_guard lock{mutex_};
      if (terminated_) return;
      terminated_ = true;
      abandon_all(why, lost, cancelled);
    }
    tell(lost, cancelled, why);
  }

  std::size_t workers() const noexcept override {
    std::lock_guard lock{mutex_};
    auto alive = std::count_if(slots_.begin(), slots_.end(), [](const remote_slot& s) { return s.alive; });
    return static_cast<std::size_t>(alive) * workers_per_node(options_);
  }

  const pool_options& options() const noexcept override { return options_; }

 private:
  bool no_node_left() const {
    return std::none_of(slots_.begin(), slots_.end(), [](const remote_slot& s) { return s.alive; });
  }
  bool all_done() const {
    return in_flight_.empty() && retry_.empty() &&
           std::all_of(jobs_.begin(), jobs_.end(), [](const auto& j) { return j->exhausted(); });
  }

  /// Hands chunks to nodes with room, least loaded first (lock held); `out` is sent unlocked.
  /// Every node has the same window, so fewest chunks in flight means least loaded.
  void dispatch(std::vector<outgoing>& out) {
    if (terminated_) return;
    const std::size_t window = chunks_per_worker * workers_per_node(options_);
    for (;;) {
      remote_slot* best = nullptr;
      std::size_t best_index = 0;
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        auto& s = slots_[i];
        if (!s.alive || s.in_flight >= window) continue;
        if (best == nullptr || s.in_flight < best->in_flight) {
          best = &s;
          best_index = i;
        }
      }
      if (best == nullptr) return;
      std::uint64_t id = 0;
      if (!retry_.empty()) {
        id = retry_.front();
        retry_.pop_front();
      } else {
        pool_task t;
        auto job = mproc::detail::next_chunk(jobs_, t);
        if (!job) return;
        id = ++next_id_;
        t.id = id;
        in_flight_[id] = chunk_record{job, job->handed_out++, std::move(t), 0, 0};
      }
      auto& rec = in_flight_.at(id);
      rec.slot = best_index;
      ++best->in_flight;
      out.push_back({best_index, id, cluster::detail::encode_to_string(rec.task)});
    }
  }

  void send(std::vector<outgoing>& out) {
    for (auto& o : out)
      caf::anon_send(courier_, send_atom::value, static_cast<std::uint64_t>(o.slot), o.id, slots_[o.slot].agent,
                     std::move(o.bytes), static_cast<std::uint32_t>(workers_per_node(options_)));
    out.clear();
  }

  void on_result(std::uint64_t id, const std::string& bytes) {
    std::vector<outgoing> out;
    chunk_record rec;
    pool_result result;
    bool decoded = true;
    {
      std::lock_guard lock{mutex_};
      auto it = in_flight_.find(id);
      if (it == in_flight_.end()) return;  // retried elsewhere after its node was given up
      rec = std::move(it->second);
      in_flight_.erase(it);
      --slots_[rec.slot].in_flight;
      try {
        result = cluster::detail::decode_from_string<pool_result>(bytes);
      } catch (const error&) {
        decoded = false;
      }
      dispatch(out);
    }
    send(out);
    if (decoded) rec.job->finished(rec.seq, result);
    else rec.job->abandoned(rec.seq, std::make_exception_ptr(error(errc::bad_message, "a chunk's result did not decode")));
    notify();
  }

  /// The node answered with an error (its own workers died past their retries), or the request
  /// failed because the node or its agent was lost.
  void on_failure(std::size_t slot, std::uint64_t id, const caf::error& err) {
    // The agent gone (its node lost, or its port closed): CAF bounces the request as receiver down.
    if (auto code = to_error_code(err); code == errc::node_lost || code == errc::actor_down)
      return on_node_lost(slots_[slot].agent.address(), err);
    std::vector<outgoing> out;
    chunk_record rec;
    {
      std::lock_guard lock{mutex_};
      auto it = in_flight_.find(id);
      if (it == in_flight_.end()) return;
      rec = std::move(it->second);
      in_flight_.erase(it);
      --slots_[rec.slot].in_flight;
      dispatch(out);
    }
    send(out);
    rec.job->abandoned(rec.seq, std::make_exception_ptr(to_error(err, "mproc::cluster pool chunk on " + slots_[slot].name)));
    notify();
  }

  void on_node_lost(const caf::actor_addr& agent, const caf::error& reason) {
    std::vector<outgoing> out;
    lost_list lost;
    std::vector<std::shared_ptr<pool_job>> cancelled;
    std::exception_ptr why;
    {
      std::lock_guard lock{mutex_};
      auto slot = std::find_if(slots_.begin(), slots_.end(), [&](const remote_slot& s) { return s.agent.address() == agent; });
      if (slot == slots_.end() || !slot->alive) return;
      slot->alive = false;
      slot->in_flight = 0;
      const auto index = static_cast<std::size_t>(slot - slots_.begin());
      why = std::make_exception_ptr(error(errc::node_lost, "mproc::cluster pool: node " + slot->name + " lost (" + describe(reason) + ")"));
      std::deque<std::uint64_t> again;
      for (auto it = in_flight_.begin(); it != in_flight_.end();) {
        if (it->second.slot != index) {
          ++it;
          continue;
        }
        if (++it->second.attempts > options_.retries) {
          lost.emplace_back(std::move(it->second), why);
          it = in_flight_.erase(it);
        } else {
          again.push_back(it->first);
          ++it;
        }
      }
      retry_.insert(retry_.begin(), again.begin(), again.end());
      if (no_node_left()) abandon_all(why, lost, cancelled);
      else dispatch(out);
    }
    send(out);
    tell(lost, cancelled, why);
  }

  /// Fails everything unfinished (lock held); the jobs are told later, unlocked.
  void abandon_all(const std::exception_ptr& why, lost_list& lost, std::vector<std::shared_ptr<pool_job>>& cancelled) {
    for (auto& [id, rec] : in_flight_) lost.emplace_back(std::move(rec), why);
    in_flight_.clear();
    retry_.clear();
    for (auto& j : jobs_) cancelled.push_back(j);
    jobs_.clear();
  }

  void tell(lost_list& lost, std::vector<std::shared_ptr<pool_job>>& cancelled, const std::exception_ptr& why) {
    for (auto& [rec, reason] : lost) rec.job->abandoned(rec.seq, reason);
    for (auto& j : cancelled) j->cancel(why);
    notify();
  }

  void notify() {
    std::lock_guard lock{mutex_};
    changed_.notify_all();
  }

  std::vector<remote_slot> slots_;
  pool_options options_;
  caf::actor courier_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<pool_job>> jobs_;
  std::unordered_map<std::uint64_t, chunk_record> in_flight_;
  std::deque<std::uint64_t> retry_;
  std::uint64_t next_id_ = 0;
  bool closed_ = false;
  bool terminated_ = false;
};

}  // namespace

mproc::pool make_pool(const std::vector<remote_node>& nodes, pool_options options) {
  if (nodes.empty()) throw error(errc::invalid_argument, "mproc::cluster::make_pool: no node");
  if (!options.initializer_entry.empty() || options.maxtasksperchild != 0)
    throw error(errc::invalid_argument, "mproc::cluster::make_pool: initializer and maxtasksperchild are not supported across nodes");
  std::vector<remote_slot> slots;
  for (const auto& n : nodes) {
    if (!n) throw error(errc::invalid_argument, "mproc::cluster::make_pool: an empty remote_node");
    slots.push_back({n.agent(), n.host() + ":" + std::to_string(n.port())});
  }
  auto engine = std::make_shared<remote_engine>(std::move(slots), std::move(options));
  engine->start();
  return mproc::pool{std::move(engine)};
}

}  // namespace mproc::cluster
