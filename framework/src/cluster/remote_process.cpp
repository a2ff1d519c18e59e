// remote_process (mproc/remote_process.hpp): requests to the serving node's process actor.
#include "mproc/remote_process.hpp"

#include <signal.h>

#include <caf/all.hpp>
#include <functional>
#include <mutex>

#include "mproc/actor_request.hpp"
#include "mproc/actor_runtime.hpp"
#include "remote_spawn.hpp"
#include "watched_request.hpp"

namespace mproc::cluster {
namespace detail {

struct remote_process_state {
  caf::actor actor;
  pid_t pid = 0;
  std::chrono::milliseconds timeout{5000};
  std::mutex mutex;
  std::optional<int> exitcode;  // final once known

  void remember(int code) {
    std::lock_guard lock{mutex};
    exitcode = code;
  }
  std::optional<int> known() {
    std::lock_guard lock{mutex};
    return exitcode;
  }
};

void at_remote_exit(const caf::actor& process_actor, std::function<void()> fn) {
  // An actor of ours that asks the process's actor to join, as remote_process::join does; the
  // answer (the exit code, or node_lost) is the end either way.
  actor_system().spawn([](caf::event_based_actor* self, caf::actor target, std::function<void()> done) -> caf::behavior {
    auto end = [self, done] {
      done();
      self->quit();
    };
    watched_request(self, target, [end](int) { end(); }, [end](caf::error&) { end(); }, join_atom::value);
    return {[](caf::unit_t) {}};
  }, process_actor, std::move(fn));
}

}  // namespace detail

remote_process remote_process::access::make(caf::actor actor, pid_t pid, std::chrono::milliseconds timeout) {
  auto state = std::make_shared<detail::remote_process_state>();
  state->actor = std::move(actor);
  state->pid = pid;
  state->timeout = timeout;
  return remote_process{std::move(state)};
}

remote_process::remote_process() noexcept = default;
remote_process::remote_process(std::shared_ptr<detail::remote_process_state> state) noexcept : state_(std::move(state)) {}

pid_t remote_process::pid() const noexcept { return state_ ? state_->pid : 0; }

bool remote_process::join(duration timeout, std::error_code& ec) {
  ec.clear();
  if (!state_) {
    ec = make_error_code(errc::invalid_argument);
    return false;
  }
  if (state_->known()) return true;
  auto code = request<int>(ec, state_->actor, timeout, detail::join_atom::value);
  if (ec == errc::timeout) {
    ec.clear();
    return false;
  }
  if (ec) return false;
  state_->remember(*code);
  return true;
}

bool remote_process::join(duration timeout) {
  std::error_code ec;
  bool done = join(timeout, ec);
  throw_if(ec, "mproc::cluster::remote_process::join");
  return done;
}

void remote_process::join(std::error_code& ec) {
  join(detail::no_request_deadline, ec);
}

void remote_process::join() {
  std::error_code ec;
  join(ec);
  throw_if(ec, "mproc::cluster::remote_process::join");
}

std::optional<int> remote_process::exitcode() const {
  if (!state_) throw error(errc::invalid_argument, "mproc::cluster::remote_process::exitcode on an empty handle");
  if (auto known = state_->known()) return known;
  auto [exited, code] = request<bool, int>(state_->actor, state_->timeout, detail::status_atom::value);
  if (!exited) return std::nullopt;
  state_->remember(code);
  return code;
}

void remote_process::signal(int sig, std::error_code& ec) {
  ec.clear();
  if (!state_) {
    ec = make_error_code(errc::invalid_argument);
    return;
  }
  if (state_->known()) return;
  request<>(ec, state_->actor, state_->timeout, detail::signal_atom::value, sig);
}

void remote_process::terminate(std::error_code& ec) { signal(SIGTERM, ec); }
void remote_process::kill(std::error_code& ec) { signal(SIGKILL, ec); }

void remote_process::terminate() {
  std::error_code ec;
  terminate(ec);
  throw_if(ec, "mproc::cluster::remote_process::terminate");
}

void remote_process::kill() {
  std::error_code ec;
  kill(ec);
  throw_if(ec, "mproc::cluster::remote_process::kill");
}

}  // namespace mproc::cluster
