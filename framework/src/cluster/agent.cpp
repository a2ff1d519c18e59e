#include "agent.hpp"

#include <caf/all.hpp>

#include "../actor/runtime.hpp"
#include "cookie_proof.hpp"
#include "chunk_server.hpp"
#include "relay.hpp"
#include "remote_spawn.hpp"
#include "mproc/actor_error.hpp"

namespace mproc::cluster::detail {
namespace {

constexpr std::size_t max_open_challenges = 256;

caf::node_id sender_node(caf::local_actor* self) {
  const auto& sender = self->current_sender();
  return sender ? sender->node() : caf::node_id{};
}

/// Local senders (this process) are trusted; remote ones must have proven the cookie.
bool may_use(caf::stateful_actor<agent_state>* self, const caf::node_id& peer) {
  return peer == self->node() || self->state.joined.count(peer) > 0;
}

caf::error refused(const std::string& why) { return make_caf_error(errc::access_denied, why); }

/// Delivers the answer to the chunk request `token`; only our own pool reports (see run_chunk).
void answer_chunk(caf::stateful_actor<agent_state>* self, std::uint64_t token, caf::message answer) {
  if (sender_node(self) != self->node()) return;
  auto it = self->state.chunks.find(token);
  if (it == self->state.chunks.end()) return;
  it->second.deliver(std::move(answer));
  self->state.chunks.erase(it);
}

}  // namespace

caf::behavior agent_behavior(caf::stateful_actor<agent_state>* self, std::string cookie) {
  self->state.cookie = std::move(cookie);
  return {
      [self](challenge_atom) -> caf::result<std::string> {
        auto peer = sender_node(self);
        if (!peer) return refused("a challenge needs a sender");
        auto& st = self->state;
        if (st.challenges.count(peer) == 0) {
          if (st.challenge_order.size() >= max_open_challenges) {
            st.challenges.erase(st.challenge_order.front());
            st.challenge_order.pop_front();
          }
          st.challenge_order.push_back(peer);
        }
        auto nonce = make_nonce();
        st.challenges[peer] = nonce;
        return nonce;
      },
      [self](prove_atom, const std::string& joiner_nonce, const std::string& joiner_proof) -> caf::result<std::string> {
        auto peer = sender_node(self);
        auto& st = self->state;
        auto it = st.challenges.find(peer);
        if (!peer || it == st.challenges.end()) return refused("no open challenge for this node");
        auto our_nonce = std::move(it->second);
        st.challenges.erase(it);
        std::erase(st.challenge_order, peer);
        // One challenge, one attempt: a wrong guess costs the peer a new round trip.
        if (joiner_nonce.empty() || !same_proof(joiner_proof, cookie_proof(st.cookie, join_role, our_nonce, joiner_nonce)))
          return refused("wrong cookie");
        st.joined.insert(peer);
        return cookie_proof(st.cookie, listen_role, joiner_nonce, our_nonce);
      },
      [self](relay_path_atom) -> caf::result<std::string> {
        if (!may_use(self, sender_node(self))) return refused("this node has not proven the cookie");
        return relay_socket_path();
      },
      [self](caf::spawn_atom, const std::string& name, const caf::message& args,
             const std::set<std::string>& ifs) -> caf::result<caf::strong_actor_ptr> {
        if (!may_use(self, sender_node(self))) return refused("this node has not proven the cookie");
        auto res = mproc::detail::spawn_registered(self, name, args, ifs);
        if (!res) return std::move(res.error());
        return std::move(*res);
      },
      [self](run_chunk_atom, const std::string& task, std::uint32_t workers) -> caf::result<std::string> {
        if (!may_use(self, sender_node(self))) return refused("this node has not proven the cookie");
        auto token = ++self->state.next_chunk;
        auto rp = self->make_response_promise();
        self->state.chunks.emplace(token, rp);
        // The pool reports from its manager thread: come back through our mailbox (a response
        // promise belongs to the actor that made it). Never a caf::error one-way: it would end us.
        run_chunk(task, workers, [agent = caf::actor_cast<caf::actor>(self), token](bool ok, std::string text) {
          if (ok) caf::send_as(agent, agent, chunk_done_atom::value, token, std::move(text));
          else caf::send_as(agent, agent, chunk_failed_atom::value, token, std::move(text));
        });
        return rp;
      },
      [self](chunk_done_atom, std::uint64_t token, std::string& result) {
        answer_chunk(self, token, caf::make_message(std::move(result)));
      },
      [self](chunk_failed_atom, std::uint64_t token, const std::string& why) {
        answer_chunk(self, token, caf::make_message(make_caf_error(errc::worker_lost, why)));
      },
      [self](spawn_process_atom, const std::string& entry, const std::string& args, const caf::actor& keeper,
             const std::vector<std::string>& capabilities, const std::vector<caf::actor>& gateways,
             const std::vector<caf::actor>& bridges) -> caf::result<caf::actor, int, std::vector<caf::actor>> {
        if (!may_use(self, sender_node(self))) return refused("this node has not proven the cookie");
        auto res = start_remote_process(entry, args, keeper, crossing_handles{capabilities, gateways, bridges});
        if (!res) return std::move(res.error());
        return caf::result<caf::actor, int, std::vector<caf::actor>>{std::get<0>(*res), std::get<1>(*res),
                                                                       std::get<2>(*res)};
      },
  };
}

}  // namespace mproc::cluster::detail
