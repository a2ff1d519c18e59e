#include "crossing_handles.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <caf/all.hpp>

#include <algorithm>

#include "encoded.hpp"
#include "mproc/detail/pipe_core.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/error.hpp"
#include "pipe_bridge.hpp"
#include "queue_gateway.hpp"
#include "queue_protocol.hpp"
#include "relay.hpp"

namespace mproc::cluster::detail {
namespace {

using mproc::detail::queue_core;
using mproc::detail::queue_token;

class gateway_exporter final : public mproc::detail::queue_exporter {
 public:
  gateway_exporter(const caf::actor& peer_agent, const std::string& peer_relay_socket, crossing_handles& out)
      : peer_agent_(peer_agent), peer_relay_socket_(peer_relay_socket), out_(out) {}

  queue_token export_queue(const std::shared_ptr<queue_core>& core, const queue_token& token) override {
    auto ref = queue_gateway_for(core, peer_agent_);
    out_.capabilities.push_back(ref.capability);
    out_.gateways.push_back(ref.gateway);
    queue_token exported = token;
    exported.path = remote_token_path({core->maxsize(), ref.capability, peer_relay_socket_});
    return exported;
  }

 private:
  const caf::actor& peer_agent_;
  const std::string& peer_relay_socket_;
  crossing_handles& out_;
};

bool is_socket(int fd) {
  struct ::stat st{};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

std::string encode_for_node(const caf::actor& peer_agent, const std::string& peer_relay_socket,
                            const std::function<std::vector<std::byte>()>& encode,
                            crossing_handles& out, mproc::detail::transfer_bundle& at_end) {
  std::vector<std::byte> bytes;
  {
    mproc::detail::transfer_out transfer{mproc::detail::transfer_out::purpose::remote_process_arguments};
    gateway_exporter exporter{peer_agent, peer_relay_socket, out};
    transfer.set_exporter(&exporter);
    bytes = encode();
    at_end = std::move(transfer.bundle());
  }
  auto& fds = at_end.fds;
  for (std::uint32_t i = 0; i < fds.size(); ++i) {
    if (!is_socket(fds.fds()[i])) {
      abandon_bridges(out.bridges);
      throw error(errc::invalid_argument, "shared memory, locks and other descriptors cannot cross hosts (pipe ends can)");
    }
    out.bridges.push_back(start_pipe_bridge(std::make_shared<mproc::detail::pipe_core>(fds.take(i))));
  }
  fds.reset();
  return as_string(bytes);
}

void connect_bridges(const crossing_handles& ours, const std::vector<caf::actor>& theirs) {
  auto paired = std::min(ours.bridges.size(), theirs.size());
  for (std::size_t i = 0; i < paired; ++i) caf::anon_send(ours.bridges[i], bridge_peer_atom::value, theirs[i]);
  // An answer with fewer bridges than we sent (it should not happen): those ends cannot talk.
  abandon_bridges({ours.bridges.begin() + static_cast<std::ptrdiff_t>(paired), ours.bridges.end()});
}

void accept_handles(const crossing_handles& in, mproc::detail::transfer_bundle& passed,
                    std::vector<caf::actor>& bridges, std::error_code& ec) {
  ec.clear();
  if (in.capabilities.size() != in.gateways.size()) return void(ec = make_error_code(errc::bad_message));
  for (std::size_t i = 0; i < in.gateways.size(); ++i) add_relay_route(in.capabilities[i], in.gateways[i]);
  for (const auto& peer : in.bridges) {
    auto [theirs, ours] = mproc::detail::pipe_core::make_pair(ec);
    if (!ec) passed.fds.add_dup(theirs->native_handle(), ec);
    if (ec) {
      abandon_bridges(bridges);
      bridges.clear();
      return;
    }
    bridges.push_back(start_pipe_bridge(std::move(ours), peer));
  }
}

void abandon_bridges(const std::vector<caf::actor>& bridges) noexcept {
  for (const auto& b : bridges) caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
}

}  // namespace mproc::cluster::detail
