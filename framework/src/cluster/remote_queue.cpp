#include "remote_queue.hpp"

#include <caf/all.hpp>

#include <cstdio>
#include <map>
#include <mutex>

#include "../actor/router.hpp"
#include "../actor/runtime.hpp"
#include "../node_impl.hpp"
#include "encoded.hpp"
#include "mproc/actor_registry.hpp"
#include "mproc/actor_request.hpp"
#include "mproc/actor_runtime.hpp"
#include "mproc/detail/transfer.hpp"
#include "queue_protocol.hpp"
#include "watched_request.hpp"
#include "node_scoped.hpp"
#include "relay.hpp"

namespace mproc::cluster::detail {
namespace {

using mproc::detail::deadline;
using mproc::detail::queue_core;
using mproc::detail::queue_token;

/// The gateway answers by the caller's deadline; this is for the trip across the network.
constexpr auto answer_margin = std::chrono::seconds{10};

/// Queue handles inside a message for another host would name queues of this host, which the
/// other one cannot reach.
class refusing_exporter final : public mproc::detail::queue_exporter {
 public:
  queue_token export_queue(const std::shared_ptr<queue_core>&, const queue_token&) override {
    throw error(errc::invalid_argument, "a queue handle cannot travel inside a message to a queue on another host");
  }
};

class remote_queue_core final : public queue_core {
 public:
  remote_queue_core(queue_token token, remote_token_info info)
      : token_(std::move(token)),
        maxsize_(info.maxsize),
        capability_(std::move(info.capability)),
        relay_socket_(std::move(info.relay_socket)) {}

  void put(encode_fn encode, const void* value, deadline until, std::error_code& ec) override {
    std::vector<std::byte> bytes;
    {
      mproc::detail::transfer_out transfer{mproc::detail::transfer_out::purpose::message};
      refusing_exporter refuse;
      transfer.set_exporter(&refuse);
      writer w{bytes};
      encode(w, value);
      if (!transfer.fds().empty()) {
        // A pipe end, shared memory, a lock: descriptors of this host.
        ec = make_error_code(errc::invalid_argument);
        return;
      }
    }
    auto call = make_call(queue_op::put, timeout_for(until));
    call.value = as_string(bytes);
    (void)send(call, until, ec);
  }

  void get(decode_fn decode, void* value, deadline until, std::error_code& ec) override {
    auto bytes = send(make_call(queue_op::get, timeout_for(until)), until, ec);
    if (ec) return;
    try {
      decode({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, value);
    } catch (const error& e) {
      ec = e.code();
    }
  }

  std::size_t qsize(std::error_code& ec) override {
    auto bytes = send(make_call(queue_op::qsize), mproc::detail::forever, ec);
    return ec ? 0 : decode_or(bytes, ec);
  }
  std::size_t maxsize() const noexcept override { return maxsize_; }
  void close(std::error_code& ec) override { (void)send(make_call(queue_op::close), mproc::detail::forever, ec); }
  void task_done(std::error_code& ec) override {
    (void)send(make_call(queue_op::task_done), mproc::detail::forever, ec);
  }
  void join(deadline until, std::error_code& ec) override {
    (void)send(make_call(queue_op::join, timeout_for(until)), until, ec);
  }
  bool flush(deadline) override { return true; }  // every put waited for its answer
  const queue_token& token() const noexcept override { return token_; }
  int watch(std::error_code& ec) override {
    ec = make_error_code(errc::invalid_argument);
    return -1;
  }
  void unwatch() noexcept override {}

  std::shared_ptr<void> writer_presence() override {
    std::lock_guard lock{presence_mutex_};
    if (auto p = presence_.lock()) return p;
    // An actor that lives while this process holds a handle that can put: the relay watches it,
    // so the gateway learns when the handle goes, or this process (even SIGKILLed).
    auto actor = spawn_lifetime_marker();
    std::error_code ec;
    auto relay = find_relay(ec);
    if (!ec) (void)request<std::string>(ec, relay, answer_margin, relay_writer_atom::value, capability_, actor);
    if (ec)
      std::fprintf(stderr, "mproc: a queue handle from another host could not count as a writer there: %s\n",
                   ec.message().c_str());
    std::shared_ptr<void> p{this, [actor](void*) { end_now(actor); }};
    presence_ = p;
    return p;
  }
  std::uint64_t issue_ticket() override {
    std::error_code ec;
    auto bytes = send(make_call(queue_op::issue_ticket), mproc::detail::forever, ec);
    auto ticket = ec ? 0 : decode_or(bytes, ec);
    throw_if(ec, "mproc::queue (encoding a handle of a queue on another host)");
    return ticket;
  }
  // A redeem that cannot reach the queue's host any more changes nothing there.
  void redeem_ticket(std::uint64_t ticket) override {
    auto call = make_call(queue_op::redeem_ticket);
    call.ticket = ticket;
    std::error_code ignored;
    (void)send(call, mproc::detail::forever, ignored);
  }
  // One way: the node calls this from its own thread when a process ends, possibly while this
  // process's actor system is ending, where a request would never be answered. This core issued
  // the ticket, so it knows the relay already.
  void release_ticket(std::uint64_t ticket) override {
    caf::actor relay;
    {
      std::lock_guard lock{relay_mutex_};
      relay = relay_;
    }
    auto call = make_call(queue_op::release_ticket);
    call.ticket = ticket;
    if (relay && mproc::detail::actor_runtime::started() != nullptr)
      caf::anon_send(relay, relay_call_atom::value, capability_, encode_to_string(call));
  }

 private:
  caf::actor find_relay(std::error_code& ec) {
    std::lock_guard lock{relay_mutex_};
    if (!relay_) {
      auto found = lookup_actor(relay_name, ec);
      if (!ec && !(found && *found)) {
        // Not connected to the node's actors yet (a process started with node.spawn): connect to
        // the relay's process, whose registry then answers.
        auto& router = mproc::detail::actor_runtime::instance().router();
        std::string why;
        if (!router.parent_runtime_actor())
          router.connect_uplink(relay_socket_, mproc::detail::deadline_after(answer_margin), ec, why);
        if (!ec) found = lookup_actor(relay_name, ec);
      }
      if (ec || !(found && *found)) {
        if (!ec) ec = make_error_code(errc::node_lost);  // no relay: the node stopped listening
        return {};
      }
      relay_ = *found;
    }
    ec.clear();
    return relay_;
  }

  std::string send(const queue_call& call, deadline until, std::error_code& ec) {
    auto relay = find_relay(ec);
    if (ec) return {};
    auto timeout = until == mproc::detail::forever
                       ? std::chrono::steady_clock::duration{no_request_deadline}
                       : std::max(until - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero()) +
                             answer_margin;
    auto out = request<std::string>(ec, relay, timeout, relay_call_atom::value, capability_, encode_to_string(call));
    if (ec == errc::timeout) {  // the gateway's answer did not come back in time: as a timeout of the call
      if (call.op == queue_op::get) ec = make_error_code(errc::empty);
      if (call.op == queue_op::put) ec = make_error_code(errc::full);
    }
    return ec ? std::string{} : std::move(*out);
  }

  static std::uint64_t decode_or(const std::string& bytes, std::error_code& ec) {
    try {
      return decode_from_string<std::uint64_t>(bytes);
    } catch (const error& e) {
      ec = e.code();
      return 0;
    }
  }

  const queue_token token_;
  const std::size_t maxsize_;
  const std::string capability_;
  const std::string relay_socket_;
  std::mutex relay_mutex_;
  caf::actor relay_;
  std::mutex presence_mutex_;
  std::weak_ptr<void> presence_;
};

/// One core per process and queue, shared by every handle (so one presence, one relay lookup).
std::shared_ptr<queue_core> open_remote(const queue_token& token, const std::type_info&, std::error_code& ec) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<queue_core>> open;
  remote_token_info info;
  if (!parse_remote_token_path(token.path, info)) return ec = make_error_code(errc::bad_message), nullptr;
  ec.clear();
  std::lock_guard lock{mutex};
  // Per fork generation: a forked child reaches the relay through its own actor system.
  auto& slot = open[std::to_string(mproc::detail::fork_generation()) + token.path];
  if (auto core = slot.lock()) return core;
  // A new core: forget those of queues this process no longer holds (the table stays as small
  // as the set of far queues in use, not of all it ever saw).
  std::erase_if(open, [&](const auto& entry) { return entry.second.expired() && &entry.second != &slot; });
  queue_token own = token;
  own.ticket = 0;
  auto core = std::make_shared<remote_queue_core>(std::move(own), std::move(info));
  slot = core;
  return core;
}

[[maybe_unused]] const bool installed = (mproc::detail::set_remote_queue_opener(&open_remote), true);

}  // namespace

void link_remote_queues() noexcept {}

}  // namespace mproc::cluster::detail
