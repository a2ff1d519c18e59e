// listen(), listener and read_cookie_file (mproc/cluster.hpp).
#include <caf/all.hpp>
#include <caf/function_view.hpp>
#include <caf/io/middleman.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <mutex>

#include "relay.hpp"
#include "remote_queue.hpp"
#include "../actor/runtime.hpp"
#include "../node_impl.hpp"
#include "agent.hpp"
#include "tls.hpp"
#include "mproc/cluster.hpp"
#include "mproc/node.hpp"

namespace mproc::cluster {
namespace detail {

struct listener_state {
  caf::actor agent;
  std::string address;
  std::uint16_t port = 0;
  bool open = false;
  std::mutex mutex;
};

}  // namespace detail

struct listener::access {
  static listener make(std::shared_ptr<detail::listener_state> state) { return listener{std::move(state)}; }
};

listener::listener() noexcept = default;
listener::listener(std::shared_ptr<detail::listener_state> state) noexcept : state_(std::move(state)) {}
listener::listener(listener&&) noexcept = default;
listener& listener::operator=(listener&& other) noexcept {
  if (this != &other) {
    close();
    state_ = std::move(other.state_);
  }
  return *this;
}
listener::~listener() { close(); }

std::uint16_t listener::port() const noexcept { return state_ ? state_->port : 0; }

const std::string& listener::address() const noexcept {
  static const std::string none;
  return state_ ? state_->address : none;
}

namespace {

/// Unpublishes and ends the agent. Idempotent. It must run before the actor system is destroyed:
/// CAF crashes destroying a system that still holds a live actor in its registry.
void close_state(detail::listener_state& state) noexcept {
  std::lock_guard lock{state.mutex};
  if (!state.open) return;
  state.open = false;
  if (auto* rt = mproc::detail::actor_runtime::started()) (void)rt->system().middleman().unpublish(state.agent, state.port);
  caf::anon_send_exit(state.agent, caf::exit_reason::user_shutdown);
  state.agent = nullptr;
}

}  // namespace

void listener::close() noexcept {
  if (state_) close_state(*state_);
}

listener listen(node& n, const listen_options& options, std::error_code& ec) {
  ec.clear();
  (void)n;  // the actor system belongs to the calling process's node
  if (options.cookie.empty()) {
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  auto middleman = detail::cluster_middleman(options.tls, ec);
  if (ec) return {};
  // Processes of this node reach queues of other hosts through the relay.
  detail::link_remote_queues();
  detail::start_relay(ec);
  if (ec) return {};
  auto& sys = actor_system();
  auto agent = sys.spawn(detail::agent_behavior, options.cookie);
  // What middleman::publish does, through the middleman actor that fits (plain or TLS).
  auto publish = caf::make_function_view(middleman);
  auto port = publish(caf::publish_atom::value, options.port, caf::actor_cast<caf::strong_actor_ptr>(agent),
                      sys.message_types(agent), options.address, options.reuse_address);
  if (!port) {
    caf::anon_send_exit(agent, caf::exit_reason::user_shutdown);
    // CAF reports cannot_open_port without the errno; taken ports are by far the common cause.
    ec = std::make_error_code(std::errc::address_in_use);
    return {};
  }
  auto state = std::make_shared<detail::listener_state>();
  state->agent = std::move(agent);
  state->address = options.address;
  state->port = *port;
  state->open = true;
  // Runs before the actor system's own shutdown hook (hooks run last-registered first).
  mproc::detail::at_node_shutdown([weak = std::weak_ptr<detail::listener_state>(state)] {
    if (auto s = weak.lock()) close_state(*s);
  });
  return listener::access::make(std::move(state));
}

listener listen(node& n, const listen_options& options) {
  std::error_code ec;
  auto out = listen(n, options, ec);
  throw_if(ec, "mproc::cluster::listen " + options.address + ":" + std::to_string(options.port));
  return out;
}

std::string read_cookie_file(const std::filesystem::path& path, std::error_code& ec) {
  ec.clear();
  struct ::stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  if (st.st_uid != ::getuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ec = make_error_code(errc::access_denied);
    return {};
  }
  std::ifstream in{path};
  std::string line;
  std::getline(in, line);
  auto first = line.find_first_not_of(" \t\r\n");
  auto last = line.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) {
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  return line.substr(first, last - first + 1);
}

std::string read_cookie_file(const std::filesystem::path& path) {
  std::error_code ec;
  auto out = read_cookie_file(path, ec);
  std::string why = ec == errc::access_denied ? " (it must be yours and private: chmod 600)" : "";
  throw_if(ec, "mproc::cluster::read_cookie_file " + path.string() + why);
  return out;
}

}  // namespace mproc::cluster
