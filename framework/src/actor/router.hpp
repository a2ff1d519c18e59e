// Internal: carries CAF messages between the processes of a node (mproc/actor_host.hpp).
//
// Topology: a host keeps one connection (the uplink) to the process that spawned it; that parent
// keeps one downlink per host. A frame names its destination process (header type_id = pid); a
// parent relays frames for its other hosts without decoding them, and a host sends everything
// not for itself up. Each connection is a mailbox `connection` (group commit: many frames per
// write), so one sender's messages to one actor keep their order.
//
// Remote actors are CAF proxies (proxy.hpp) made by this router as the proxy_registry backend:
// deserializing an actor address of another process yields a proxy whose enqueue serializes the
// message and hands it to the right connection. A new proxy asks the actor's process to report
// the actor's end (actor_monitor -> actor_down), which kills the proxy with the actor's reason;
// a host's death kills all proxies of its process with errc::host_lost (exit code or signal,
// learnt from the node's pidfd reaping) and is announced to the other hosts.
//
// Delivery: a message for an idle actor runs that actor on the I/O thread (inline_runner.hpp),
// which saves the wake-up of a scheduler thread per request. A blocking requester reads its
// answer from the connection itself (forward), which saves the wake-up of the I/O thread.
//
// Limit: a host's own hosts (spawn_host called inside a host) are reachable from that host only;
// the rest of the node routes everything it does not know to its parent.
//
// Thread safety: all members from any thread; frame handlers run one at a time per connection,
// on the mailbox I/O thread, or on a blocking requester's thread while it reads its answer.
#pragma once

#include <boost/asio/posix/stream_descriptor.hpp>
#include <caf/actor_system.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/node_id.hpp>
#include <caf/proxy_registry.hpp>
#include <caf/scoped_execution_unit.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../mailbox/connection.hpp"
#include "../process_state.hpp"
#include "inline_runner.hpp"

namespace mproc::detail {

/// What two processes tell each other when a host connects.
struct actor_peer_hello {
  std::uint32_t pid = 0;
  std::vector<std::byte> node;        // the CAF node_id, CAF-serialized
  std::uint64_t runtime_actor = 0;    // id of the peer's runtime actor (runtime.cpp)
  std::string registrations;          // sorted names of message and actor types, one per line
};
template <class F>
void inspect(F& f, actor_peer_hello& x) {
  f(x.pid, x.node, x.runtime_actor, x.registrations);
}

class actor_router : public caf::proxy_registry::backend, public std::enable_shared_from_this<actor_router> {
 public:
  actor_router(caf::actor_system& sys, std::string registrations);
  ~actor_router() override;
  actor_router(const actor_router&) = delete;
  actor_router& operator=(const actor_router&) = delete;

  /// Sets the id of this process's runtime actor (sent in hellos). Call once, before any hello.
  void set_runtime_actor(caf::actor_id id) noexcept { runtime_actor_ = id; }
  caf::proxy_registry& proxies() noexcept { return proxies_; }
  std::uint32_t self_pid() const noexcept { return self_pid_; }

  // proxy_registry::backend
  caf::strong_actor_ptr make_proxy(caf::node_id nid, caf::actor_id aid) override;
  void set_last_hop(caf::node_id*) override {}

  /// Sends `content` to actor `aid` of process `pid` (a proxy's enqueue, on `ctx`). A request that
  /// cannot go (unregistered type, no route) is answered with the error; a one-way message is
  /// dropped (as CAF drops it), with a line on stderr when its type is not registered.
  /// A request that a blocking actor sends from its own thread (`ctx` is its context) returns
  /// once its answer is in the actor's mailbox, or after at most `answer_wait`: this thread reads
  /// the answer from the connection itself (connection::borrow_reading), since it would only wait for
  /// it next, and the wake-up of the I/O thread between the socket and it is saved. Only while it
  /// has no other request outstanding (sent less than `fan_out_window` ago): requests sent one
  /// after another before any answer (a fan-out) leave at once, not `answer_wait` apart.
  void forward(std::uint32_t pid, caf::actor_id aid, caf::strong_actor_ptr sender, caf::message_id mid,
               const caf::mailbox_element::forwarding_stack& stages, caf::message content,
               caf::execution_unit* ctx = nullptr);
  /// How long a blocking requester reads its connection for its answer before it leaves that to
  /// the I/O thread: several round trips, so that a quick actor's answer is read here.
  static constexpr std::chrono::microseconds answer_wait{200};
  /// How long an outstanding request of a requester counts as a fan-out in progress (an older one
  /// may never be answered: a request that timed out keeps its entry until its answer comes).
  static constexpr std::chrono::seconds fan_out_window{1};

  // -- parent side ---------------------------------------------------------------------------
  /// Listens for hosts (lazily) and returns the socket path.
  std::string listen(std::error_code& ec);
  /// Waits until the host process `proc` has connected; returns a proxy of its runtime actor.
  /// Fails with the process's end, errc::wrong_type (registrations differ) or errc::timeout.
  caf::strong_actor_ptr await_host(const std::shared_ptr<process_state>& proc, std::chrono::steady_clock::time_point until,
                                   std::error_code& ec, std::string& why);

  // -- host side -----------------------------------------------------------------------------
  /// Connects to the parent at `path` and exchanges hellos (blocking, bounded by `until`).
  void connect_uplink(const std::string& path, std::chrono::steady_clock::time_point until, std::error_code& ec,
                      std::string& why);
  /// The parent's runtime actor (a proxy), null in the root.
  caf::strong_actor_ptr parent_runtime_actor();
  /// Blocks until the uplink closed or stop_host() was called; returns the exit code asked for.
  int wait_until_host_ends();
  /// Ends wait_until_host_ends() with `code` (a dedicated host whose actor ended).
  void stop_host(int code);

  /// Runs `f` soon on the I/O thread.
  void post(std::function<void()> f);

  /// Closes every connection; proxies die with errc::node_closed. Idempotent.
  void shutdown() noexcept;

 private:
  struct peer {
    std::shared_ptr<connection> conn;
    caf::node_id node;
    caf::actor_id runtime_actor = 0;
  };

  std::shared_ptr<connection> route(std::uint32_t pid);
  void on_frame(std::uint32_t from_pid, const wire::header& h, std::span<const std::byte> payload);
  void deliver_message(std::span<const std::byte> payload);
  void deliver_monitor(std::span<const std::byte> payload);
  void deliver_down(std::span<const std::byte> payload);
  void deliver_node_down(std::span<const std::byte> payload);
  /// CAF-serializes xs... into `buffer` (cleared first), with this system as the context.
  template <class... Ts>
  caf::error encode(std::vector<char>& buffer, Ts&... xs) {
    buffer.clear();
    caf::binary_serializer sink{sys_, buffer};
    return sink(xs...);
  }
  /// An actor_message payload: sender, destination actor, message id, stages, content.
  caf::error encode_envelope(std::vector<char>& buffer, caf::strong_actor_ptr sender, caf::actor_id aid,
                             caf::message_id mid, caf::mailbox_element::forwarding_stack stages, caf::message content);
  /// Reads a payload with the I/O thread's context, so actor addresses become our proxies.
  caf::binary_deserializer reader(std::span<const std::byte> payload);
  void send_down(std::uint32_t watcher, caf::actor_id aid, const caf::error& reason);
  void bounce(const caf::strong_actor_ptr& sender, caf::message_id mid, caf::error reason);
  /// A message that cannot go: a response's requester gets the error as its answer, a request's
  /// sender too; see bounce() for one-way messages.
  void refuse(std::uint32_t pid, caf::actor_id aid, const caf::strong_actor_ptr& sender, caf::message_id mid,
              caf::error reason);
  /// Answers with `reason` the requests still waiting for process `pid` (for its actor `aid`, or
  /// all of them when aid is 0).
  void fail_pending(std::uint32_t pid, caf::actor_id aid, const caf::error& reason);
  /// Kills every proxy of process `pid` with `reason` and forgets the process.
  void kill_process_proxies(std::uint32_t pid, const caf::error& reason);
  void accept_next();
  void on_accepted(unique_fd fd);
  /// Actors that the frames of one read of `conn` wake run after that read, on its thread
  /// (inline_runner::begin_batch). Before conn->start().
  void batch_inline_runs(connection& conn);
  void on_host_hello(const std::shared_ptr<connection>& conn, std::span<const std::byte> payload,
                     std::shared_ptr<std::uint32_t> bound_pid);
  void on_downlink_closed(std::uint32_t pid);
  void on_uplink_closed();
  std::vector<std::byte> node_bytes(const caf::node_id& nid);
  std::optional<caf::node_id> node_from_bytes(std::span<const std::byte> bytes);
  actor_peer_hello own_hello();
  /// The node of process `pid`, when known.
  std::optional<caf::node_id> node_of(std::uint32_t pid);

  caf::actor_system& sys_;
  caf::proxy_registry proxies_;
  std::string registrations_;
  std::uint32_t self_pid_;
  caf::actor_id runtime_actor_ = 0;
  caf::scoped_execution_unit io_context_;  // deserialization on the I/O thread
  inline_runner runner_;  // delivery: an idle actor runs on the I/O thread

  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopped_ = false;
  /// Held shared by a thread of ours that uses the actor system outside the I/O thread (the
  /// notice of a host's end), exclusively by shutdown(): the system ends after shutdown().
  std::shared_mutex system_users_;
  std::optional<peer> uplink_;
  std::uint32_t uplink_pid_ = 0;
  bool uplink_closed_ = false;
  std::optional<int> host_exit_;
  std::map<std::uint32_t, peer> downlinks_;
  std::map<std::uint32_t, caf::node_id> nodes_;  // pid -> node, for every process we talk to
  std::map<std::uint32_t, wire::status_message> refusals_;  // pid -> why a host was refused
  std::vector<std::shared_ptr<connection>> handshaking_;
  std::map<std::uint32_t, std::shared_ptr<process_state>> hosts_;  // spawned by us: exit reasons
  std::string path_;
  std::optional<boost::asio::posix::stream_descriptor> listener_;
  /// Requests sent from this process and not answered yet, by (requester, response id): CAF
  /// would let them wait for their timeout when the other side dies; we answer them at once.
  /// A request that timed out and is never answered stays until its actor or process ends.
  struct pending_request {
    std::uint32_t pid;
    caf::actor_id aid;
    caf::actor_addr requester;
    std::chrono::steady_clock::time_point sent;
  };
  std::mutex pending_mutex_;
  std::map<std::pair<caf::actor_id, std::uint64_t>, pending_request> pending_;
};

/// The pid inside a CAF node id (0 for a node id that names none).
std::uint32_t pid_of(const caf::node_id& nid) noexcept;

}  // namespace mproc::detail
