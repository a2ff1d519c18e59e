// The supervisor actor (mproc/actors/supervisor.hpp).
//
// Everything happens on the supervisor's own thread, so its state needs no lock. Restarts are
// handled one at a time: a crash that arrives while a group restart waits for children to stop
// is queued (`pending_`) and handled when that restart is done. Children being stopped lose their
// handle first, so their down_msgs (and those of old incarnations) match no child and are ignored.
#include <caf/all.hpp>

#include <mproc/actors/caf_error.hpp>
#include <mproc/actors/directory.hpp>
#include <mproc/actor_runtime.hpp>
#include <mproc/actors/supervisor.hpp>

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "stop_in_order.hpp"

namespace mproc::actors {
namespace {

using steady = std::chrono::steady_clock;
// Asks the supervisor to handle its queued crashes; sent to itself after the initial start.
using resume_atom = caf::atom_constant<caf::atom("supresume")>;

struct child_slot {
  child_spec spec;
  caf::actor handle;
  caf::actor_addr published;  // what the directory got last for this name (weak)
  std::uint64_t restarts = 0;
  bool attempted = false;  // a start was tried once: any further start is a restart
};

// Erlang's view: normal and shutdown are not failures, for a transient child.
bool is_normal_exit(const caf::error& reason) {
  return !reason || reason == caf::exit_reason::user_shutdown;
}

bool needs_restart(restart_type type, const caf::error& reason) {
  switch (type) {
    case restart_type::permanent: return true;
    case restart_type::transient: return !is_normal_exit(reason);
    case restart_type::temporary: return false;
  }
  return false;
}

class supervisor_actor : public caf::event_based_actor {
 public:
  supervisor_actor(caf::actor_config& cfg, supervisor_spec spec)
      : caf::event_based_actor(cfg), strategy_(spec.strategy), intensity_(spec.intensity),
        observer_(std::move(spec.observer)) {
    for (auto& c : spec.children) children_.push_back({std::move(c), {}, {}, 0, false});
  }

  const char* name() const override { return "mproc.supervisor"; }

  caf::behavior make_behavior() override {
    set_down_handler([this](caf::down_msg& down) { on_down(down); });
    set_exit_handler([this](caf::exit_msg& exit) {
      if (exit.reason) shut_down(std::move(exit.reason));  // exit(kill) never gets here: on_exit
    });
    start_group(all_indices());
    if (!pending_.empty()) send(this, resume_atom::value);
    return {
        [this](resume_atom) { handle_pending(); },
        [this](detail::stopped_atom) {
          if (auto next = std::exchange(after_stop_, nullptr)) next();
        },
        [this](whereis_atom, const std::string& name) -> caf::result<caf::actor> {
          for (const auto& c : children_)
            if (c.spec.name == name) return c.handle;
          return to_caf_error(errc::invalid_argument, "no child named \"" + name + "\"");
        },
        [this](children_atom) {
          std::vector<child_info> out;
          for (const auto& c : children_) out.push_back({c.spec.name, c.handle, c.restarts});
          return out;
        },
    };
  }

  // Runs on every end, exit(kill) included: whatever still runs is stopped (after our down_msg).
  void on_exit() override {
    withdraw_names();
    auto running = take_running(all_indices());
    if (!running.empty())
      detail::stop_in_order(home_system(), std::move(running));
  }

 private:
  std::vector<std::size_t> all_indices() const {
    std::vector<std::size_t> out(children_.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = i;
    return out;
  }

  // The children a crash of child `i` restarts, in start order.
  std::vector<std::size_t> group_of(std::size_t i) const {
    switch (strategy_) {
      case restart_strategy::one_for_one: return {i};
      case restart_strategy::one_for_all: return all_indices();
      case restart_strategy::rest_for_one: break;
    }
    std::vector<std::size_t> out;
    for (std::size_t j = i; j < children_.size(); ++j) out.push_back(j);
    return out;
  }

  void on_down(const caf::down_msg& down) {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      auto& c = children_[i];
      if (!c.handle || c.handle.address() != down.source) continue;
      c.handle = nullptr;
      if (!stopping_ && needs_restart(c.spec.restart, down.reason)) {
        pending_.push_back(i);
        handle_pending();
      }
      return;
    }
  }

  // Starts the children of `group` in order; a temporary child only if it never ran. A failed
  // start is a crash: for one_for_one the others still start; for the group strategies the rest
  // wait for the group restart that the crash triggers.
  void start_group(const std::vector<std::size_t>& group) {
    for (auto i : group) {
      auto& c = children_[i];
      if (c.handle || (c.spec.restart == restart_type::temporary && c.attempted)) continue;
      if (start_child(i)) continue;
      if (c.spec.restart == restart_type::temporary) continue;
      pending_.push_back(i);
      if (strategy_ != restart_strategy::one_for_one) return;
    }
  }

  bool start_child(std::size_t i) {
    auto& c = children_[i];
    if (std::exchange(c.attempted, true)) ++c.restarts;
    caf::actor handle;
    try {
      if (auto started = c.spec.start(home_system())) handle = std::move(*started);
    } catch (...) {  // a throwing start function is one more way to fail to start
    }
    if (!handle) return false;
    c.handle = handle;
    monitor(handle);
    publish(home_system(), c.spec.name, handle);
    c.published = handle.address();
    if (c.restarts > 0 && observer_) send(observer_, restarted_atom::value, c.spec.name, c.restarts);
    return true;
  }

  // Handles queued crashes one after the other; returns while a group restart waits for stops.
  void handle_pending() {
    while (!busy_ && !stopping_ && !pending_.empty()) {
      auto i = pending_.front();
      pending_.pop_front();
      if (children_[i].handle) continue;  // a group restart already started it again
      if (!record_restart()) return shut_down(too_many_restarts(children_[i].spec.name));
      auto group = group_of(i);
      auto running = take_running(group);
      if (running.empty()) {
        start_group(group);
        continue;
      }
      busy_ = true;
      stop_then(std::move(running), [this, group] {
        busy_ = false;
        if (stopping_) return stop_all_and_quit();
        start_group(group);
        handle_pending();
      });
    }
  }

  caf::error too_many_restarts(const std::string& child) const {
    return to_caf_error(errc::too_many_restarts, "child \"" + child + "\" needed more than " +
                                                     std::to_string(intensity_.max_restarts) + " restarts within " +
                                                     std::to_string(intensity_.within.count()) + " ms");
  }

  // Records a restart now; false when that makes more than max_restarts within the window.
  bool record_restart() {
    auto now = steady::now();
    restart_times_.push_back(now);
    while (now - restart_times_.front() > intensity_.within) restart_times_.pop_front();
    return static_cast<long long>(restart_times_.size()) <= intensity_.max_restarts;
  }

  // Takes the handles of the running children of `group`, last first, to be stopped.
  std::vector<detail::stop_item> take_running(const std::vector<std::size_t>& group) {
    std::vector<detail::stop_item> out;
    for (auto it = group.rbegin(); it != group.rend(); ++it) {
      auto& c = children_[*it];
      if (c.handle) out.push_back({std::exchange(c.handle, nullptr), c.spec.shutdown});
    }
    return out;
  }

  // When the supervisor ends: its children's names go, unless they now name someone else.
  void withdraw_names() {
    for (auto& c : children_) {
      if (!c.published) continue;
      if (lookup(home_system(), c.spec.name).address() == c.published) publish(home_system(), c.spec.name, nullptr);
      c.published = caf::actor_addr{};
    }
  }

  // Runs `next` once `items` are stopped (one stop at a time: a group restart is busy_ meanwhile).
  // Not a request: its promise would keep this object, which the actor system's end waits for,
  // inside a stopper that the end strands (stop_in_order.hpp).
  void stop_then(std::vector<detail::stop_item> items, std::function<void()> next) {
    after_stop_ = std::move(next);
    detail::stop_in_order(home_system(), std::move(items), address());
  }

  // Stops every child (last first), then quits with `reason`. A group restart that is stopping
  // children right now finishes those stops first, so no child outlives the supervisor.
  void shut_down(caf::error reason) {
    if (std::exchange(stopping_, true)) return;
    exit_reason_ = std::move(reason);
    pending_.clear();
    if (!busy_) stop_all_and_quit();
  }

  void stop_all_and_quit() {
    withdraw_names();
    auto running = take_running(all_indices());
    if (running.empty()) return quit(exit_reason_);
    stop_then(std::move(running), [this] { quit(exit_reason_); });
  }

  restart_strategy strategy_;
  restart_intensity intensity_;
  caf::actor observer_;
  std::vector<child_slot> children_;
  std::deque<std::size_t> pending_;               // crashed children waiting for their restart
  std::deque<steady::time_point> restart_times_;  // within the intensity window
  std::function<void()> after_stop_;              // what follows the stop under way
  bool busy_ = false;                             // a group restart waits for stops
  bool stopping_ = false;                         // giving up or told to stop
  caf::error exit_reason_;                        // ... and the reason it will quit with
};

// What makes `spec` unusable, or "" when nothing does.
std::string problem_of(const supervisor_spec& spec) {
  if (spec.intensity.max_restarts < 0) return "a negative max_restarts";
  if (spec.intensity.within <= std::chrono::milliseconds::zero()) return "an intensity window that is not positive";
  std::set<std::string> names;
  for (const auto& c : spec.children) {
    if (c.name.empty()) return "a child without a name";
    if (!names.insert(c.name).second) return "two children named \"" + c.name + "\"";
    if (!c.start) return "child \"" + c.name + "\" has no start function";
    if (c.shutdown <= std::chrono::milliseconds::zero())
      return "child \"" + c.name + "\" has a shutdown bound that is not positive";
  }
  return {};
}

// Spawns the supervisor and, like OTP's start_link, returns once it tried the first start of
// every child: their names are published by then. (Its first message is handled after that.)
caf::actor launch(caf::actor_system& sys, supervisor_spec spec) {
  auto sup = sys.spawn<supervisor_actor, caf::detached>(std::move(spec));
  caf::scoped_actor self{sys};
  self->request(sup, caf::infinite, children_atom::value)
      .receive([](const std::vector<child_info>&) {}, [](const caf::error&) {});  // an error: it ended already
  return sup;
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec, std::error_code& ec) {
  ec.clear();
  if (!problem_of(spec).empty()) {
    ec = make_error_code(errc::invalid_argument);
    return nullptr;
  }
  return launch(sys, std::move(spec));
}

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec) {
  if (auto problem = problem_of(spec); !problem.empty())
    throw error(errc::invalid_argument, "spawn_supervisor: " + problem);
  return launch(sys, std::move(spec));
}

namespace {

// Builders by name; a name registered twice with different builders maps to nullptr (unusable).
std::map<std::string, spec_builder>& spec_builders() {
  static std::map<std::string, spec_builder> builders;  // filled before main, read-only after
  return builders;
}

// The actor factory behind supervisor_type: (std::string builder name) -> a supervisor.
caf::actor_factory_result spawn_by_name(caf::actor_config& cfg, caf::message& args) {
  if (!args.match_elements<std::string>()) return {};
  auto it = spec_builders().find(args.get_as<std::string>(0));
  if (it == spec_builders().end() || !it->second) return {};
  auto& sys = cfg.host->system();
  auto spec = it->second(sys);
  if (!problem_of(spec).empty()) return {};
  auto sup = sys.spawn_class<supervisor_actor, caf::detached>(cfg, std::move(spec));
  return {caf::actor_cast<caf::strong_actor_ptr>(std::move(sup)), sys.message_types<caf::actor>()};
}

}  // namespace

bool register_supervisor_spec(const char* name, spec_builder build) {
  auto [it, fresh] = spec_builders().emplace(name, build);
  if (!fresh && it->second != build) it->second = nullptr;
  return true;
}

void add_supervisor_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<child_info>("mproc.child_info");
  cfg.add_message_type<std::vector<child_info>>("std::vector<mproc.child_info>");
  cfg.add_actor_factory(supervisor_type, spawn_by_name);
  add_errc_category(cfg);
}

// Every process of a node that uses the supervisor knows its types (mproc/actor_runtime.hpp).
MPROC_ACTOR_CONFIG(add_supervisor_types);

}  // namespace mproc::actors
