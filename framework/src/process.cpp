#include "mproc/process.hpp"

#include <unistd.h>

#include <csignal>

#include "internal_wait.hpp"
#include "mproc/current_process.hpp"
#include "mproc/detail/program_wait.hpp"
#include "mproc/node.hpp"
#include "node_impl.hpp"
#include "process_state.hpp"

namespace mproc {
namespace {

using detail::process_state;

/// The node that will start `s`: its bound node, or the process's current one.
std::shared_ptr<detail::node_impl> owner_of(process_state& s, std::error_code& ec) {
  if (auto n = s.owner.lock()) return n;
  if (s.bound) {
    ec = make_error_code(errc::node_closed);  // bound to a node that is gone
    return nullptr;
  }
  node* n = node::current_or_null();
  if (n == nullptr) {
    ec = make_error_code(errc::no_node);
    return nullptr;
  }
  return n->impl().shared_from_this();
}

/// Waits for exit (or an interrupt, when it is the program's call). Returns true when exited.
bool wait_exit(process_state& s, std::optional<std::chrono::steady_clock::time_point> deadline,
               std::error_code& ec) {
  std::unique_lock lock{s.mutex};
  ec.clear();
  if (!s.started) return void(ec = make_error_code(errc::not_started)), false;
  if (s.self) return void(ec = make_error_code(errc::invalid_argument)), false;  // joining oneself
  if (s.exitcode) return true;
  detail::program_wait call{ec, s.owner.lock()};
  if (ec) return false;  // Ctrl-C came while nobody was blocked: this call is the first to hear of it
  std::uint64_t interrupts = s.interrupts;
  auto woken_by_sigint = [&] { return call.counted() && s.interrupts != interrupts; };
  auto done = [&] { return s.exitcode.has_value() || woken_by_sigint(); };
  if (deadline) s.changed.wait_until(lock, *deadline, done);
  else s.changed.wait(lock, done);
  // Interrupted wins over an exit that the interrupt itself caused meanwhile: also when Ctrl-C
  // reached the child too (a terminal signals the whole group) and its exit was seen before the
  // node's I/O thread got to the SIGINT.
  bool ctrl_c = call.interrupted();
  if (woken_by_sigint() || ctrl_c) {
    ec = make_error_code(errc::interrupted);
    return false;
  }
  return s.exitcode.has_value();
}

thread_local int internal_wait_depth = 0;

}  // namespace

namespace detail {
internal_wait_scope::internal_wait_scope() noexcept { ++internal_wait_depth; }
internal_wait_scope::~internal_wait_scope() { --internal_wait_depth; }
bool internal_wait_scope::active() noexcept { return internal_wait_depth > 0; }

void adopt_current(process& p) {
  auto info = current_process();
  auto& s = *process_access::state(p);
  std::lock_guard lock{s.mutex};
  s.name = info.name;
  s.daemon = info.daemon;
  s.started = true;
  s.self = true;
  s.pid = info.pid;
}
}  // namespace detail

process::process() : state_(std::make_shared<process_state>()) {}
process::process(node& n) : process() {
  state_->owner = n.impl().shared_from_this();
  state_->bound = true;
}
process::process(process&&) noexcept = default;
process& process::operator=(process&&) noexcept = default;
process::~process() = default;

void process::set_local_target(std::function<void()> local) { state_->local = std::move(local); }
void process::set_entry_target(const void* fn, std::vector<std::byte> args, detail::transfer_bundle passed) {
  state_->entry_fn = fn;
  state_->args = std::move(args);
  state_->passed = std::move(passed);
}

void detail::process_access::set_encoded_target(process& p, const entry_info& entry, std::vector<std::byte> args,
                                                transfer_bundle passed) {
  // A fork child runs the local target: the descriptors are inherited under the same numbers,
  // and the state (a copy in the child) still holds them while the arguments are decoded.
  process_state* state = p.state_.get();
  p.set_local_target([&entry, args, state] {
    transfer_in transfer{state->passed.fds};
    entry.invoke(entry.fn, args);
  });
  p.set_entry_target(entry.fn, std::move(args), std::move(passed));
}

void process::run() {
  if (state_->local) state_->local();
}

void process::start(std::error_code& ec) noexcept {
  ec.clear();
  {
    std::lock_guard lock{state_->mutex};
    if (state_->started) return void(ec = make_error_code(errc::already_started));
    state_->started = true;  // claimed: a second start() fails even while this one runs
  }
  auto node = owner_of(*state_, ec);
  try {
    if (!ec) {
      state_->owner = node;
      node->start(*this, ec);
    }
  } catch (const std::system_error& e) {
    ec = e.code();  // e.g. an encoding error of a subclass's state
  } catch (...) {
    ec = make_error_code(errc::invalid_argument);
  }
  if (ec) {
    std::lock_guard lock{state_->mutex};
    state_->started = false;
    state_->pid = 0;
    state_->pidfd.reset();
    state_->channel.reset();
  }
}

void process::start() {
  std::error_code ec;
  start(ec);
  throw_if(ec, "start " + (name().empty() ? std::string{"process"} : name()));
}

void process::join(std::error_code& ec) noexcept { wait_exit(*state_, std::nullopt, ec); }
void process::join() {
  std::error_code ec;
  join(ec);
  throw_if(ec, "join " + name());
}

bool process::join(duration timeout, std::error_code& ec) noexcept {
  return wait_exit(*state_, std::chrono::steady_clock::now() + timeout, ec);
}
bool process::join(duration timeout) {
  std::error_code ec;
  bool done = join(timeout, ec);
  throw_if(ec, "join " + name());
  return done;
}

bool process::is_alive() const {
  std::unique_lock lock{state_->mutex};
  if (!state_->started || state_->exitcode) return false;
  if (state_->self) return true;
  if (!state_->pidfd || !detail::pidfd_exited(state_->pidfd.get())) return true;
  lock.unlock();
  // The kernel says it is gone; its status is on the way to the node. Wait for it, so that
  // exitcode() is set whenever is_alive() says false (as in Python).
  std::error_code ec;
  wait_exit(*state_, std::nullopt, ec);
  return false;
}

pid_t process::pid() const noexcept {
  std::lock_guard lock{state_->mutex};
  return state_->pid;
}

std::optional<int> process::exitcode() const {
  if (is_alive()) return std::nullopt;
  std::lock_guard lock{state_->mutex};
  return state_->exitcode;
}

std::optional<remote_exception> process::exception() const {
  std::lock_guard lock{state_->mutex};
  return state_->exception;
}

void process::signal(int sig, std::error_code& ec) noexcept {
  std::lock_guard lock{state_->mutex};
  ec.clear();
  if (!state_->started) return void(ec = make_error_code(errc::not_started));
  if (state_->self) {
    ::kill(::getpid(), sig);
    return;
  }
  if (state_->exitcode || !state_->pidfd) return;
  // Through the pidfd: the signal can never hit a recycled pid.
  if (detail::pidfd_signal(state_->pidfd.get(), sig) != 0 && errno != ESRCH) ec = detail::last_error();
}

void process::terminate(std::error_code& ec) noexcept { signal(SIGTERM, ec); }
void process::terminate() {
  std::error_code ec;
  terminate(ec);
  throw_if(ec, "terminate " + name());
}
void process::kill(std::error_code& ec) noexcept { signal(SIGKILL, ec); }
void process::kill() {
  std::error_code ec;
  kill(ec);
  throw_if(ec, "kill " + name());
}

const std::string& process::name() const noexcept { return state_->name; }

void process::set_name(std::string name) { state_->name = std::move(name); }

bool process::daemon() const noexcept { return state_->daemon; }

void process::set_daemon(bool daemon) {
  std::lock_guard lock{state_->mutex};
  if (state_->started) throw error(errc::already_started, "set_daemon after start");
  state_->daemon = daemon;
}

start_method process::method() const noexcept {
  if (state_->method) return *state_->method;
  if (auto n = state_->owner.lock()) return n->options().method;
  if (node* n = node::current_or_null()) return n->options().method;
  return start_method::forkserver;
}

void process::set_start_method(start_method m) {
  std::lock_guard lock{state_->mutex};
  if (state_->started) throw error(errc::already_started, "set_start_method after start");
  state_->method = m;
}

}  // namespace mproc
