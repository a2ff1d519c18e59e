#include <mutex>

#include "../internal_wait.hpp"
#include "../process_state.hpp"
#include "mproc/actor_host.hpp"
#include "mproc/actor_request.hpp"
#include "mproc/entry.hpp"
#include "mproc/node.hpp"
#include "mproc/process.hpp"
#include "runtime.hpp"

namespace mproc {
namespace detail {

struct host_state {
  process proc;
  caf::actor runtime;  // the host's runtime actor (a proxy)
  host_options options;
  std::mutex mutex;
  bool owned = true;
};

}  // namespace detail

/// The main function of a host process: connect to the parent, then serve until the parent
/// goes away or (dedicated) the first actor ends.
void mproc_actor_host(std::string parent_path, bool dedicated) {
  auto& rt = detail::actor_runtime::instance();
  if (dedicated) rt.set_dedicated();
  std::error_code ec;
  std::string why;
  rt.router().connect_uplink(parent_path, detail::deadline_after(std::chrono::seconds(10)), ec, why);
  if (ec) throw error(ec, "actor host: " + why);
  if (rt.router().wait_until_host_ends() != 0) throw error(errc::actor_down, "actor host: its actor ended with an error");
}
MPROC_ENTRY(mproc_actor_host);

struct actor_host::access {
  static actor_host make(std::shared_ptr<detail::host_state> state) { return actor_host{std::move(state)}; }
};

actor_host::actor_host() noexcept = default;
actor_host::actor_host(std::shared_ptr<detail::host_state> state) noexcept : state_(std::move(state)) {}
actor_host::actor_host(actor_host&&) noexcept = default;
actor_host& actor_host::operator=(actor_host&& other) noexcept {
  if (this != &other) {
    if (state_ && state_->owned) stop();
    state_ = std::move(other.state_);
  }
  return *this;
}
actor_host::~actor_host() {
  if (state_ && state_->owned) stop();
}

pid_t actor_host::pid() const noexcept { return state_ ? state_->proc.pid() : 0; }
bool actor_host::is_alive() const { return state_ && state_->proc.is_alive(); }

void actor_host::stop(duration grace) {
  if (!state_) return;
  std::lock_guard lock{state_->mutex};
  // A wait of mproc's own, bounded by `grace`: Ctrl-C meanwhile is the node's to act on (it ends
  // the children and dies of SIGINT), not an interrupt of this wait that nobody would report.
  detail::internal_wait_scope internal;
  std::error_code ec;
  state_->proc.terminate(ec);
  if (!state_->proc.join(grace, ec)) {
    state_->proc.kill(ec);
    state_->proc.join(ec);
  }
  state_->owned = false;
}

void actor_host::release() noexcept {
  if (state_) state_->owned = false;
}

std::string actor_host::registered_name(const void* fn) {
  const char* name = detail::actor_function_name(fn);
  if (name == nullptr) throw error(errc::unknown_entry, "mproc::actor_host::spawn: the function is not registered (MPROC_ACTOR)");
  return name;
}

caf::strong_actor_ptr actor_host::spawn_impl(const std::string& name, caf::message args, std::set<std::string> ifs,
                                             caf::error& err) {
  if (!state_) {
    err = make_caf_error(errc::invalid_argument, "empty actor_host");
    return nullptr;
  }
  auto out = detail::request_impl<caf::strong_actor_ptr>(err, state_->runtime, state_->options.spawn_timeout,
                                                         caf::spawn_atom::value, name, std::move(args), std::move(ifs));
  if (err || !out) return nullptr;
  return std::move(*out);
}

namespace {
actor_host spawn_host_impl(node& n, const host_options& options, std::error_code& ec, std::string& why) {
  auto& rt = detail::actor_runtime::instance();
  auto path = rt.router().listen(ec);
  if (ec) return {};
  auto state = std::make_shared<detail::host_state>();
  state->options = options;
  state->proc = process{n, mproc_actor_host, path, options.dedicated};
  // Never fork: the parent runs CAF's threads, and a forked copy of it may inherit locks they held.
  auto method = options.method.value_or(n.options().method);
  state->proc.set_start_method(method == start_method::fork ? start_method::forkserver : method);
  state->proc.start(ec);
  if (ec) return {};
  auto runtime = rt.router().await_host(detail::process_access::state(state->proc),
                                        detail::deadline_after(options.start_timeout), ec, why);
  if (ec) {
    detail::internal_wait_scope internal;
    std::error_code ignored;
    state->proc.kill(ignored);
    state->proc.join(ignored);
    return {};
  }
  state->runtime = caf::actor_cast<caf::actor>(std::move(runtime));
  return actor_host::access::make(std::move(state));
}
}  // namespace

actor_host spawn_host(node& n, host_options options, std::error_code& ec) {
  std::string why;
  return spawn_host_impl(n, options, ec, why);
}

actor_host spawn_host(node& n, host_options options) {
  std::error_code ec;
  std::string why;
  auto host = spawn_host_impl(n, options, ec, why);
  if (ec) throw error(ec, "mproc::spawn_host" + (why.empty() ? std::string{} : ": " + why));
  return host;
}

}  // namespace mproc
