// mproc/cluster.hpp — nodes on several hosts, through CAF's own remoting (BASP over TCP).
//
//   // on host B (or: mproc-node --listen 0.0.0.0:4242 --cookie-file ~/.mproc-cookie)
//   mproc::node node{argc, argv};
//   auto listener = mproc::cluster::listen(node, {.address = "0.0.0.0", .port = 4242, .cookie = cookie});
//
//   // on host A
//   mproc::node node{argc, argv};
//   mproc::cluster::remote_node b = mproc::cluster::join(node, "hostb", 4242, {.cookie = cookie});
//   auto calc = b.spawn<calc_actor>("calc_impl", 10);      // an actor in B's node process
//   int r = mproc::request<int>(calc, 1s, add_atom_v, 1, 2);
//
// Remote handles are CAF's own proxies: send, request with a timeout, monitor, link and handles
// inside messages work across hosts as CAF's remoting makes them work. Queue handles and pipe
// ends cross hosts as arguments of spawn_process (see there).
//
// The cookie. A node listens only with a non-empty shared secret, and answers nothing but a
// challenge until a peer proves it knows the secret: HMAC-SHA256 over fresh nonces of both sides
// (the cookie itself never crosses the network), and the listening node proves it too, so a joiner
// cannot be fooled by an impostor. A wrong cookie gets errc::access_denied. CAF's spawn and config
// servers, which any TCP peer could otherwise use, are closed in every process. Like Erlang's
// cookie this authorizes honest peers; it does not encrypt. On networks you do not trust use TLS.
//
// TLS (tls_options, CAF's OpenSSL module). A listener or join with `.tls` encrypts the connection,
// and both sides must present a certificate signed by the CA file: a peer without one, or with
// one from another CA, is refused during the TLS handshake, before it can send a single actor
// message; the cookie proof then runs inside the encrypted connection. One set of TLS files per
// process and node: the first TLS listen/join fixes them (copies the files), later ones must
// give the same (errc::invalid_argument otherwise); plain ports and joins work beside them.
//
// Failure detection. Every connection carries a heartbeat every 200 ms; one silent for 1.2 s is
// dropped. A node that hangs or is cut off is therefore noticed within 1.4 s (one that dies
// closes its sockets and is noticed at once, ~1 ms on loopback): its proxies
// end with errc::node_lost (CAF's remote_link_unreachable), monitors fire, on_down callbacks run,
// and requests to it fail at once instead of waiting for their timeout.
//
// Thread safety: every function may be called from any thread. A listener and a remote_node may
// be shared between threads for their const members; move them like any handle.
#pragma once

#include <caf/actor.hpp>
#include <caf/message.hpp>
#include <caf/node_id.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "mproc/actor_error.hpp"
#include "mproc/actor_runtime.hpp"
#include "mproc/entry.hpp"
#include "mproc/remote_process.hpp"
#include "mproc/serialization.hpp"

namespace mproc {
class node;

namespace cluster {

/// TLS for a node's connections: its certificate and key, and the CA that signs the certificate
/// of every node of the cluster. All three files are PEM; errc::invalid_argument when one is
/// missing or unusable (the key does not match the certificate, or the passphrase does not open
/// it). Peers are checked against the CA only (no host names): whoever holds a certificate of that
/// CA (and the cookie) is a node of the cluster.
struct tls_options {
  /// This node's certificate; may be followed by intermediate CA certificates.
  std::filesystem::path certificate;
  /// Its private key, encrypted (with `passphrase`) or not.
  std::filesystem::path key;
  /// The CA certificate(s) a peer's certificate must be signed by.
  std::filesystem::path ca;
  /// Opens an encrypted key; empty for a key without one.
  std::string passphrase{};

  bool operator==(const tls_options&) const = default;
};

/// Where and how a node accepts other nodes.
struct listen_options {
  /// Address to bind: "127.0.0.1" (the default) accepts only this host, "0.0.0.0" every interface.
  std::string address = "127.0.0.1";
  /// TCP port; 0 picks a free one (listener::port() tells which).
  std::uint16_t port = 0;
  /// The shared secret; required (errc::invalid_argument when empty).
  std::string cookie;
  /// Allow binding a port still in TIME_WAIT from an earlier run.
  bool reuse_address = true;
  /// Accept only TLS connections from peers with a certificate of the CA (see tls_options).
  std::optional<tls_options> tls{};
};

/// How a node joins another.
struct join_options {
  /// The shared secret of the cluster.
  std::string cookie;
  /// Limit for connecting and proving the cookie.
  std::chrono::milliseconds timeout{5000};
  /// Connect with TLS; the listening node must listen with TLS and a certificate of the CA.
  std::optional<tls_options> tls{};
};

namespace detail {
struct listener_state;
}

/// A TCP port on which this node accepts other nodes.
///
/// Destructor: close(). The node's end closes a listener that is still open.
class listener {
 public:
  listener() noexcept;
  listener(listener&&) noexcept;
  listener& operator=(listener&&) noexcept;
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener();

  /// The bound port (0 for an empty handle).
  std::uint16_t port() const noexcept;
  /// The bound address as given in listen_options.
  const std::string& address() const noexcept;
  /// Stops accepting and ends the agent that serves joined nodes: they see their remote_node's
  /// on_down and can spawn no more here. Actors they spawned keep running; connections stay.
  /// Idempotent; no-op for an empty handle.
  void close() noexcept;

  struct access;

 private:
  friend struct access;
  explicit listener(std::shared_ptr<detail::listener_state> state) noexcept;
  std::shared_ptr<detail::listener_state> state_;
};

/// Opens a TCP port for other nodes. Throws mproc::error: invalid_argument (empty cookie, unusable
/// or conflicting TLS files), or the system error address_in_use when the port cannot be bound
/// (taken, privileged, bad address).
listener listen(node& n, const listen_options& options);
listener listen(node& n, const listen_options& options, std::error_code& ec);

/// Reads a cookie file: its first line, without surrounding white space. The file must belong to
/// this user and not be readable by group or others (like an ssh key): errc::access_denied
/// otherwise; errc::invalid_argument when it is missing or the cookie is empty.
std::string read_cookie_file(const std::filesystem::path& path);
std::string read_cookie_file(const std::filesystem::path& path, std::error_code& ec);

/// Another node this node has joined.
///
/// Copies share one connection. Destructor: nothing; the connection stays until either node ends
/// (CAF keeps one connection per pair of nodes). Processes started there through any copy are
/// terminated by that node when this node ends or the connection is lost.
class remote_node {
 public:
  remote_node() = default;

  /// Spawns the actor type registered under `name` (MPROC_ACTOR, or add_actor_type in an
  /// MPROC_ACTOR_CONFIG) in the remote node's own process. For a typed Handle the remote node
  /// checks that the actor's interface is exactly Handle's. Throws mproc::error: invalid_argument
  /// (unknown name, bad arguments, interface mismatch, empty handle), node_lost, timeout,
  /// access_denied (the remote node no longer accepts this one).
  template <class Handle = caf::actor, class... Ts>
  Handle spawn(const std::string& name, Ts&&... args) const {
    caf::error err;
    auto ptr = spawn_impl(name, caf::make_message(std::forward<Ts>(args)...), actor_system().message_types<Handle>(), err);
    if (err) throw to_error(err, "mproc::cluster::remote_node::spawn " + name);
    return caf::actor_cast<Handle>(std::move(ptr));
  }
  /// Non-throwing form: a null handle and `ec` set on failure.
  template <class Handle = caf::actor, class... Ts>
  Handle spawn(std::error_code& ec, const std::string& name, Ts&&... args) const {
    caf::error err;
    auto ptr = spawn_impl(name, caf::make_message(std::forward<Ts>(args)...), actor_system().message_types<Handle>(), err);
    ec = to_error_code(err);
    return ec ? Handle{} : caf::actor_cast<Handle>(std::move(ptr));
  }

  /// Starts fn(args...) as a process of the remote node; fn must be registered with MPROC_ENTRY
  /// in both programs, and its arguments serializable. Queue handles among them are served from
  /// this process to the far one (each call one request across, with the queue's own semantics
  /// and errors); pipe ends get a bridge that carries their messages both ways. Shared memory,
  /// locks and other descriptors cannot cross hosts: errc::invalid_argument. Throws
  /// mproc::error: unknown_entry, spawn_failed, node_lost, timeout, access_denied,
  /// invalid_argument (empty handle, or an argument that cannot cross).
  template <class Fn, class... Args>
    requires std::is_function_v<std::remove_pointer_t<Fn>>
  remote_process spawn_process(Fn fn, Args&&... args) const {
    typename mproc::detail::fn_traits<Fn>::args_tuple values{std::forward<Args>(args)...};
    return spawn_process_impl(mproc::detail::fn_address(fn), [&] { return to_bytes(values); });
  }

  /// Calls `fn` once, from a CAF thread, when the connection to the node is lost (the reason
  /// maps to errc::node_lost) or the node closes it. Called at once if that already happened.
  void on_down(std::function<void(const caf::error&)> fn) const;

  /// The remote node's agent: the actor that serves this node's requests there.
  const caf::actor& agent() const noexcept { return agent_; }
  /// CAF's id of the remote node (host hash and pid).
  caf::node_id id() const noexcept { return agent_ ? agent_.node() : caf::node_id{}; }
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  explicit operator bool() const noexcept { return static_cast<bool>(agent_); }

  struct access;

 private:
  friend struct access;
  caf::strong_actor_ptr spawn_impl(const std::string& name, caf::message args, std::set<std::string> ifs,
                                   caf::error& err) const;
  remote_process spawn_process_impl(const void* fn, const std::function<std::vector<std::byte>()>& encode) const;
  caf::actor agent_;
  caf::actor keeper_;  // ours; the remote node watches it to end our processes when we are gone
  std::string relay_socket_;  // where the remote node's processes reach its relay (queue handles)
  std::string host_;
  std::uint16_t port_ = 0;
  std::chrono::milliseconds timeout_{5000};
};

/// Connects to the node listening at host:port and proves the cookie. Throws mproc::error:
/// node_lost (nothing answers there, or the connection broke), access_denied (wrong cookie, or
/// the other side could not prove it knows the cookie; or a side hung up during the handshake:
/// a certificate refused by either side, a plain joiner at a TLS port; a TLS joiner at a plain
/// port gets this or node_lost), timeout, invalid_argument (empty cookie, unusable or conflicting
/// TLS files).
remote_node join(node& n, const std::string& host, std::uint16_t port, const join_options& options);
remote_node join(node& n, const std::string& host, std::uint16_t port, const join_options& options,
                 std::error_code& ec);

}  // namespace cluster
}  // namespace mproc
