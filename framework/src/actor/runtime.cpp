#include "runtime.hpp"

#include <unistd.h>

#include <algorithm>
#include <caf/actor_registry.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "../node_impl.hpp"
#include "mproc/actor_error.hpp"
#include "mproc/actor_registry.hpp"
#include "mproc/actor_request.hpp"
#include "mproc/node.hpp"

namespace mproc {
namespace detail {
namespace {

struct registrations {
  std::mutex mutex;
  std::vector<actor_config_hook> hooks;
  std::map<const void*, std::string> function_names;
  static registrations& get() {
    static registrations r;
    return r;
  }
};

/// What a peer must have registered identically: every message and actor type name.
std::string registration_list(const caf::actor_system_config& cfg) {
  std::vector<std::string> names;
  for (const auto& entry : cfg.value_factories_by_name) names.push_back("message " + entry.first);
  for (const auto& entry : cfg.actor_factories) names.push_back("actor " + entry.first);
  std::sort(names.begin(), names.end());
  std::string out;
  for (auto& n : names) out += n + '\n';
  return out;
}

std::int64_t scheduler_threads() {
  if (const char* env = std::getenv("MPROC_ACTOR_THREADS"); env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return std::max<std::int64_t>(2, std::thread::hardware_concurrency());
}

/// CAF's remoting (BASP over TCP, used by the cluster layer) sends a heartbeat on every connection
/// and drops a connection that stayed silent past the timeout, killing its proxies with
/// remote_link_unreachable: a dead or cut-off node is noticed within timeout + interval. Processes
/// without TCP connections pay nothing for it.
void configure_remoting(caf::actor_system_config& cfg) {
  cfg.set("middleman.heartbeat-interval", caf::timespan{remote_heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{remote_connection_timeout});
}

/// CAF registers a spawn server and a config server under well-known names; any peer that reaches
/// a TCP port of ours could spawn registered actor types through the first and rewrite settings
/// through the second, before proving it knows the cluster's cookie. Nothing of ours uses them.
void close_utility_actors(caf::actor_system& sys) {
  sys.registry().erase(caf::atom("SpawnServ"));
  sys.registry().erase(caf::atom("ConfigServ"));
}

std::mutex& runtime_mutex() {
  static std::mutex m;
  return m;
}
actor_runtime* current_runtime = nullptr;
pid_t runtime_pid = 0;

struct names_state {
  struct entry {
    caf::strong_actor_ptr actor;
    std::set<std::string> ifs;
  };
  std::map<std::string, entry> names;
  bool dedicated_spawned = false;
};

}  // namespace

void add_actor_config_hook(actor_config_hook hook) noexcept {
  auto& r = registrations::get();
  std::lock_guard lock{r.mutex};
  r.hooks.push_back(hook);
}

void register_actor_function(const void* fn, const char* name) noexcept {
  auto& r = registrations::get();
  std::lock_guard lock{r.mutex};
  r.function_names.emplace(fn, name);
}

const char* actor_function_name(const void* fn) noexcept {
  auto& r = registrations::get();
  std::lock_guard lock{r.mutex};
  auto it = r.function_names.find(fn);
  return it == r.function_names.end() ? nullptr : it->second.c_str();
}

/// The runtime actor: spawns by name for other processes; in the root it also keeps the names.
caf::behavior runtime_actor_behavior(caf::stateful_actor<names_state>* self, actor_runtime* rt) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& names = self->state.names;
    for (auto it = names.begin(); it != names.end();) {
      if (it->second.actor == dm.source) it = names.erase(it);
      else ++it;
    }
  });
  return {
      [self, rt](caf::spawn_atom, const std::string& name, const caf::message& args,
                 const std::set<std::string>& ifs) -> caf::result<caf::strong_actor_ptr> {
        auto res = spawn_registered(self, name, args, ifs);
        if (!res) return std::move(res.error());
        auto ptr = std::move(*res);
        if (rt->dedicated() && !self->state.dedicated_spawned) {
          self->state.dedicated_spawned = true;
          ptr->get()->attach_functor([rt](const caf::error& reason) {
            rt->router().stop_host(!reason || reason == caf::exit_reason::normal ? 0 : 1);
          });
        }
        return ptr;
      },
      [self](caf::put_atom, const std::string& name, const caf::strong_actor_ptr& actor,
             const std::set<std::string>& ifs) {
        if (!actor) {
          self->state.names.erase(name);
          return;
        }
        self->state.names[name] = {actor, ifs};
        self->monitor(actor);
      },
      [self](caf::get_atom, const std::string& name) -> caf::message {
        auto& names = self->state.names;
        auto it = names.find(name);
        if (it == names.end()) return caf::make_message(caf::strong_actor_ptr{}, std::set<std::string>{});
        return caf::make_message(it->second.actor, it->second.ifs);
      },
  };
}

caf::expected<caf::strong_actor_ptr> spawn_registered(caf::local_actor* self, const std::string& name,
                                                      const caf::message& args, const std::set<std::string>& ifs) {
  auto& sys = self->system();
  auto res = sys.spawn<caf::actor>(name, args, self->context(), !ifs.empty(), ifs.empty() ? nullptr : &ifs);
  if (!res) return make_caf_error(errc::invalid_argument, "cannot spawn " + name + ": " + sys.render(res.error()));
  return caf::actor_cast<caf::strong_actor_ptr>(std::move(*res));
}

actor_runtime::actor_runtime() {
  config_ = std::make_unique<caf::actor_system_config>();
  auto& cfg = *config_;
  // CAF 0.17 gives a system a node id (host hash + pid) only when the middleman is loaded; proxies
  // and actor addresses need one. Its TCP side stays idle until the cluster layer uses it.
  cfg.load<caf::io::middleman>();
  configure_remoting(cfg);
  cfg.set("scheduler.max-threads", scheduler_threads());
  cfg.set("work-stealing.moderate-poll-attempts", std::int64_t{0});
  add_error_category(cfg);
  {
    auto& r = registrations::get();
    std::lock_guard lock{r.mutex};
    for (auto hook : r.hooks) hook(cfg);
  }
  auto regs = registration_list(cfg);
  system_ = std::make_unique<caf::actor_system>(cfg);
  close_utility_actors(*system_);
  router_ = std::make_shared<actor_router>(*system_, std::move(regs));
  runtime_actor_ = system_->spawn(runtime_actor_behavior, this);
  // Others address it by id (sent in hellos), so CAF's registry must know it.
  system_->registry().put(runtime_actor_.id(), caf::actor_cast<caf::strong_actor_ptr>(runtime_actor_));
  router_->set_runtime_actor(runtime_actor_.id());
}

actor_runtime::~actor_runtime() { shutdown(); }

void actor_runtime::shutdown() noexcept {
  if (!system_) return;
  router_->shutdown();
  caf::anon_send_exit(runtime_actor_, caf::exit_reason::user_shutdown);
  runtime_actor_ = nullptr;
  // Peers may hold references to any actor of ours for ever: do not wait for them.
  system_->await_actors_before_shutdown(false);
  system_.reset();
  router_.reset();
}

caf::actor actor_runtime::registry_actor() {
  if (auto parent = router_->parent_runtime_actor()) return caf::actor_cast<caf::actor>(parent);
  return runtime_actor_;
}

actor_runtime* actor_runtime::started() noexcept {
  std::lock_guard lock{runtime_mutex()};
  return current_runtime != nullptr && runtime_pid == ::getpid() ? current_runtime : nullptr;
}

actor_runtime& actor_runtime::instance() {
  {
    std::lock_guard lock{runtime_mutex()};
    if (current_runtime != nullptr && runtime_pid == ::getpid()) return *current_runtime;
  }
  node* n = node::current_or_null();
  if (n == nullptr) throw error(errc::no_node, "mproc::actor_system");
  // CAF starts threads: start the fork server first, while it can still be forked cheaply. Not
  // under our lock: the server is a fork of this process, and every process it starts would
  // inherit the lock held (and hang on its first use of actors).
  if (n->options().method == start_method::forkserver) {
    std::error_code ignored;  // spawn reports a failing server itself
    n->impl().ensure_running(true, ignored);
  }
  std::lock_guard lock{runtime_mutex()};
  if (current_runtime != nullptr && runtime_pid == ::getpid()) return *current_runtime;  // another thread was first
  // A forked child's inherited runtime is never touched again (its threads do not exist here).
  current_runtime = new actor_runtime();
  runtime_pid = ::getpid();
  at_node_shutdown([pid = runtime_pid] {
    actor_runtime* rt = nullptr;
    {
      std::lock_guard guard{runtime_mutex()};
      if (::getpid() != pid || current_runtime == nullptr) return;
      rt = current_runtime;
      current_runtime = nullptr;
    }
    delete rt;
  });
  return *current_runtime;
}

void register_actor_impl(const std::string& name, caf::strong_actor_ptr actor, std::set<std::string> ifs,
                         std::chrono::milliseconds timeout, std::error_code& ec) {
  auto registry = actor_runtime::instance().registry_actor();
  request<>(ec, registry, timeout, caf::put_atom::value, name, std::move(actor), std::move(ifs));
}

caf::strong_actor_ptr lookup_actor_impl(const std::string& name, const std::set<std::string>& ifs, bool any_ifs,
                                        std::chrono::milliseconds timeout, std::error_code& ec) {
  auto registry = actor_runtime::instance().registry_actor();
  auto found = request<caf::strong_actor_ptr, std::set<std::string>>(ec, registry, timeout, caf::get_atom::value, name);
  if (ec || !found) return nullptr;
  auto& [actor, registered_ifs] = *found;
  if (actor && !any_ifs && registered_ifs != ifs) {
    ec = make_error_code(errc::wrong_type);
    return nullptr;
  }
  return actor;
}

}  // namespace detail

caf::actor_system& actor_system() { return detail::actor_runtime::instance().system(); }

bool is_node_actor_system(const caf::actor_system& sys) noexcept {
  auto* rt = detail::actor_runtime::started();
  return rt != nullptr && &rt->system() == &sys;
}

}  // namespace mproc
