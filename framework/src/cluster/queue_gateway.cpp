#include "queue_gateway.hpp"

#include <caf/all.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "../node_impl.hpp"
#include "cookie_proof.hpp"
#include "encoded.hpp"
#include "mproc/actor_error.hpp"
#include "mproc/actor_runtime.hpp"
#include "node_scoped.hpp"
#include "queue_protocol.hpp"

namespace mproc::cluster::detail {
namespace {

using mproc::detail::deadline;
using mproc::detail::queue_core;

constexpr auto wait_slice = std::chrono::milliseconds{100};

/// The live gateways of this process, by queue and remote node.
struct gateway_table {
  using key = std::tuple<std::string, std::uint64_t, caf::node_id>;
  std::mutex mutex;
  std::map<key, gateway_ref> live;
  bool hook_installed = false;
  /// Set at the node's end: waiting calls give up.
  std::atomic<bool> stopping{false};

  static gateway_table& get() {
    static gateway_table t;
    return t;
  }

  /// The gateways themselves end with the node (end_with_node); their waiting calls stop here.
  void stop_all() {
    std::lock_guard lock{mutex};
    stopping = true;
    live.clear();
    hook_installed = false;
  }
};

void put_encoded(writer& w, const void* value) {
  const auto& bytes = *static_cast<const std::string*>(value);
  w.raw(bytes.data(), bytes.size());
}

void take_encoded(std::span<const std::byte> record, void* out) {
  auto& bytes = *static_cast<std::string*>(out);
  bytes.clear();
  bytes.reserve(record.size());
  reader r{record.data(), record.size()};  // waits for a large body's bytes that are still arriving
  r.take_pieces(record.size(), [&](const std::byte* p, std::size_t n) { bytes.append(reinterpret_cast<const char*>(p), n); });
}

bool would_wait(const std::error_code& ec) { return ec == errc::empty || ec == errc::full || ec == errc::timeout; }

/// Runs a call that may wait, on `core`, until `until`.
std::string run_call(queue_core& core, const queue_call& call, deadline until, std::error_code& ec) {
  ec.clear();
  try {
    switch (call.op) {
      case queue_op::put:
        core.put(&put_encoded, &call.value, until, ec);
        return {};
      case queue_op::get: {
        std::string out;
        core.get(&take_encoded, &out, until, ec);
        return out;
      }
      case queue_op::qsize: {
        std::uint64_t n = core.qsize(ec);
        return encode_to_string(n);
      }
      case queue_op::close:
        core.close(ec);
        return {};
      case queue_op::task_done:
        core.task_done(ec);
        return {};
      case queue_op::join:
        core.join(until, ec);
        return {};
      default:
        ec = make_error_code(errc::invalid_argument);
        return {};
    }
  } catch (const std::system_error& e) {
    ec = e.code();
    return {};
  }
}

/// The same, in slices, so that the node's end stops it.
std::string run_waiting_call(queue_core& core, const queue_call& call, std::error_code& ec) {
  auto until = deadline_for(call.timeout_ns);
  for (;;) {
    if (gateway_table::get().stopping) {
      ec = make_error_code(errc::node_closed);
      return {};
    }
    auto slice = std::min(until, mproc::detail::deadline_after(wait_slice));
    auto out = run_call(core, call, slice, ec);
    if (!would_wait(ec) || slice == until) return out;
  }
}

caf::result<std::string> answer(std::string out, const std::error_code& ec) {
  if (ec) return to_caf_error(ec);
  return out;
}

using waited_atom = caf::atom_constant<caf::atom("mp_qwaited")>;

/// One waiting call, on a thread of its own (a detached actor): its answer goes back to the
/// gateway anonymously, never to the other node straight from here (see pipe_bridge.hpp: CAF
/// would wait for ever for a detached actor caught in its remoting at the end).
caf::behavior waiting_call(caf::event_based_actor* self, std::shared_ptr<queue_core> core, caf::actor gateway) {
  return {
      [self, core, gateway](std::uint64_t id, const std::string& bytes) {
        self->quit();
        std::error_code ec;
        auto out = run_waiting_call(*core, decode_from_string<queue_call>(bytes), ec);
        caf::anon_send(gateway, waited_atom::value, id, std::move(out), ec ? to_caf_error(ec) : caf::error{});
      },
  };
}

struct gateway_state {
  std::shared_ptr<queue_core> core;
  std::string capability;
  /// Processes of the remote node that hold a handle that can put (see relay_writer_atom).
  std::size_t writers = 0;
  std::shared_ptr<void> presence;
  /// Calls waiting on threads of their own, by id.
  std::unordered_map<std::uint64_t, caf::response_promise> waiting;
  std::uint64_t next_waiting = 0;
  static inline const char* name = "mproc.cluster.queue_gateway";
};

caf::behavior gateway(caf::stateful_actor<gateway_state>* self, std::shared_ptr<queue_core> core,
                      std::string capability, caf::actor peer_agent) {
  self->state.core = std::move(core);
  self->state.capability = std::move(capability);
  // The node we serve is gone: its writers with it.
  self->monitor(peer_agent);
  self->set_down_handler([self](const caf::down_msg&) { self->quit(); });
  return {
      [self](queue_call_atom, const std::string& named, const std::string& bytes) -> caf::result<std::string> {
        auto& st = self->state;
        if (!same_proof(named, st.capability)) return make_caf_error(errc::access_denied, "unknown queue");
        queue_call call;
        try {
          call = decode_from_string<queue_call>(bytes);
        } catch (const error& e) {
          return make_caf_error(errc::bad_message, e.what());
        }
        switch (call.op) {
          case queue_op::writer_here:
            if (st.writers++ == 0) st.presence = st.core->writer_presence();
            return std::string{};
          case queue_op::writer_gone:
            if (st.writers > 0 && --st.writers == 0) st.presence.reset();
            return std::string{};
          case queue_op::issue_ticket:
            return encode_to_string(st.core->issue_ticket());
          case queue_op::redeem_ticket:
            st.core->redeem_ticket(call.ticket);
            return std::string{};
          case queue_op::release_ticket:
            st.core->release_ticket(call.ticket);
            return std::string{};
          default:
            break;
        }
        std::error_code ec;
        auto out = run_call(*st.core, call, std::chrono::steady_clock::now(), ec);  // never waits here
        if (would_wait(ec) && call.timeout_ns != 0) {
          auto rp = self->make_response_promise();
          auto id = ++st.next_waiting;
          st.waiting.emplace(id, rp);
          auto worker = self->spawn<caf::detached>(waiting_call, st.core, caf::actor_cast<caf::actor>(self));
          self->anon_send(worker, id, bytes);
          return rp;
        }
        return answer(std::move(out), ec);
      },
      [self](waited_atom, std::uint64_t id, std::string& out, caf::error& err) {
        auto it = self->state.waiting.find(id);
        if (it == self->state.waiting.end()) return;
        if (err) it->second.deliver(std::move(err));
        else it->second.deliver(std::move(out));
        self->state.waiting.erase(it);
      },
  };
}

}  // namespace

gateway_ref queue_gateway_for(const std::shared_ptr<queue_core>& core, const caf::actor& peer_agent) {
  auto& table = gateway_table::get();
  const auto& token = core->token();
  gateway_table::key key{token.path, token.queue_id, peer_agent.node()};
  gateway_ref ref{{}, make_nonce()};
  {
    std::lock_guard lock{table.mutex};
    if (auto it = table.live.find(key); it != table.live.end()) return it->second;
    if (!table.hook_installed) {
      table.hook_installed = true;
      table.stopping = false;
      mproc::detail::at_node_shutdown([] { gateway_table::get().stop_all(); });
    }
    ref.gateway = actor_system().spawn(gateway, core, ref.capability, peer_agent);
    table.live.emplace(key, ref);
  }
  // Outside the lock: a gateway that already ended (its peer was gone) runs these at once.
  // Before the actor system ends: a gateway another node knows is registered with CAF.
  end_with_node(ref.gateway);
  ref.gateway->attach_functor([key, capability = ref.capability] {
    auto& t = gateway_table::get();
    std::lock_guard l{t.mutex};
    if (auto it = t.live.find(key); it != t.live.end() && it->second.capability == capability) t.live.erase(it);
  });
  return ref;
}

}  // namespace mproc::cluster::detail
