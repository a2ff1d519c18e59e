// join() and remote_node (mproc/cluster.hpp).
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <chrono>
#include <optional>
#include <tuple>

#include "../node_impl.hpp"
#include "agent.hpp"
#include "remote_spawn.hpp"
#include "cookie_proof.hpp"
#include "crossing_handles.hpp"
#include "encoded.hpp"
#include "node_scoped.hpp"
#include "tls.hpp"
#include "mproc/actor_request.hpp"
#include "mproc/cluster.hpp"
#include "mproc/node.hpp"

namespace mproc::cluster {

struct remote_node::access {
  static remote_node make(caf::actor agent, caf::actor keeper, std::string relay_socket, std::string host,
                          std::uint16_t port, std::chrono::milliseconds timeout) {
    remote_node out;
    out.agent_ = std::move(agent);
    out.relay_socket_ = std::move(relay_socket);
    out.keeper_ = std::move(keeper);
    out.host_ = std::move(host);
    out.port_ = port;
    out.timeout_ = timeout;
    return out;
  }
};

namespace {

/// Connects through CAF's middleman actor, which (unlike middleman::remote_actor) takes a timeout.
caf::actor connect(const std::string& host, std::uint16_t port, const join_options& options, std::error_code& ec) {
  auto middleman = detail::cluster_middleman(options.tls, ec);
  if (ec) return {};
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  caf::error err;
  std::optional<std::tuple<caf::node_id, caf::strong_actor_ptr, std::set<std::string>>> found;
  do {
    err = caf::error{};
    found = mproc::detail::request_impl<caf::node_id, caf::strong_actor_ptr, std::set<std::string>>(
        err, middleman, deadline - std::chrono::steady_clock::now(), caf::connect_atom::value, host, port);
    // CAF 0.17's BASP broker drops, at each heartbeat tick, every connection that has been silent
    // past the connection timeout, and a connection still waiting for the other side's first
    // handshake bytes counts as silent since ever: a tick in that window fails the connect with
    // connection_timeout after a few ms (seen ~1 join in 20 under TSan, where handshakes are
    // slower; possible anywhere). Try again while our own timeout allows.
  } while (err == caf::sec::connection_timeout && std::chrono::steady_clock::now() < deadline);
  // The other side hung up before CAF's handshake: it refused our TLS handshake (no certificate of
  // its CA; a plain joiner at a TLS port), or we refused its certificate or its plain TCP.
  if (err == caf::sec::disconnect_during_handshake)
    err = make_caf_error(errc::access_denied, "connection refused during the handshake");
  ec = to_error_code(err);
  if (ec) return {};
  auto agent = caf::actor_cast<caf::actor>(std::get<1>(*found));
  if (!agent) ec = make_error_code(errc::node_lost);  // a port without a published actor
  return agent;
}

}  // namespace

remote_node join(node& n, const std::string& host, std::uint16_t port, const join_options& options,
                 std::error_code& ec) {
  (void)n;  // the actor system belongs to the calling process's node
  ec.clear();
  if (options.cookie.empty()) {
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  auto agent = connect(host, port, options, ec);
  if (ec) return {};
  auto their_nonce = request<std::string>(ec, agent, options.timeout, detail::challenge_atom::value);
  if (ec) return {};
  auto our_nonce = detail::make_nonce();
  auto our_proof = detail::cookie_proof(options.cookie, detail::join_role, *their_nonce, our_nonce);
  auto their_proof = request<std::string>(ec, agent, options.timeout, detail::prove_atom::value, our_nonce, our_proof);
  if (ec) return {};
  // The listening node proves the cookie too: a joiner must not hand work to an impostor.
  if (!detail::same_proof(*their_proof, detail::cookie_proof(options.cookie, detail::listen_role, our_nonce, *their_nonce))) {
    ec = make_error_code(errc::access_denied);
    return {};
  }
  auto relay_socket = request<std::string>(ec, agent, options.timeout, detail::relay_path_atom::value);
  if (ec) return {};
  // The keeper lives as long as this node: the remote node watches it and ends the processes we
  // started there once it goes down (our end, or a lost connection).
  return remote_node::access::make(std::move(agent), detail::spawn_lifetime_marker(), std::move(*relay_socket), host, port,
                                   options.timeout);
}

remote_node join(node& n, const std::string& host, std::uint16_t port, const join_options& options) {
  std::error_code ec;
  auto out = join(n, host, port, options, ec);
  throw_if(ec, "mproc::cluster::join " + host + ":" + std::to_string(port));
  return out;
}

caf::strong_actor_ptr remote_node::spawn_impl(const std::string& name, caf::message args, std::set<std::string> ifs,
                                              caf::error& err) const {
  if (!agent_) {
    err = make_caf_error(errc::invalid_argument, "spawn on an empty remote_node");
    return nullptr;
  }
  auto out = mproc::detail::request_impl<caf::strong_actor_ptr>(err, agent_, timeout_, caf::spawn_atom::value, name,
                                                               std::move(args), std::move(ifs));
  return out ? std::move(*out) : nullptr;
}

remote_process remote_node::spawn_process_impl(const void* fn,
                                               const std::function<std::vector<std::byte>()>& encode) const {
  const auto* entry = mproc::detail::find_entry_by_fn(fn);
  if (entry == nullptr) throw error(errc::unknown_entry, "mproc::cluster::remote_node::spawn_process: register it with MPROC_ENTRY");
  if (!agent_) throw error(errc::invalid_argument, "mproc::cluster::remote_node::spawn_process on an empty handle");
  detail::crossing_handles handles;
  mproc::detail::transfer_bundle at_end;  // queue tickets: released when the process has ended there
  auto args = detail::encode_for_node(agent_, relay_socket_, encode, handles, at_end);
  caf::error err;
  auto started = mproc::detail::request_impl<caf::actor, int, std::vector<caf::actor>>(
      err, agent_, timeout_, detail::spawn_process_atom::value, entry->name, args, keeper_, handles.capabilities,
      handles.gateways, handles.bridges);
  if (err) {
    detail::abandon_bridges(handles.bridges);
    throw to_error(err, "mproc::cluster::remote_node::spawn_process " + entry->name);
  }
  auto& [actor, pid, their_bridges] = *started;
  detail::connect_bridges(handles, their_bridges);
  detail::at_remote_exit(actor, [bundle = std::make_shared<mproc::detail::transfer_bundle>(std::move(at_end))] {
    bundle->end();
  });
  return remote_process::access::make(actor, static_cast<pid_t>(pid), timeout_);
}

void remote_node::on_down(std::function<void(const caf::error&)> fn) const {
  if (!agent_) throw error(errc::invalid_argument, "mproc::cluster::remote_node::on_down on an empty handle");
  mproc::on_down(agent_, std::move(fn));
}

}  // namespace mproc::cluster
