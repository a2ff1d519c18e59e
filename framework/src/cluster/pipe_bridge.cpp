#include "pipe_bridge.hpp"

#include <sys/socket.h>

#include <caf/all.hpp>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "mproc/actor_runtime.hpp"
#include "node_scoped.hpp"

namespace mproc::cluster::detail {
namespace {

using mproc::detail::pipe_core;

using bridge_data_atom = caf::atom_constant<caf::atom("mp_bdata")>;
using bridge_ack_atom = caf::atom_constant<caf::atom("mp_back")>;
using bridge_eof_atom = caf::atom_constant<caf::atom("mp_beof")>;
using bridge_read_done_atom = caf::atom_constant<caf::atom("mp_bread")>;

constexpr std::size_t max_unacknowledged_messages = 32;
constexpr std::size_t max_unacknowledged_bytes = 8u << 20;

/// What the actor and its reader thread share.
struct bridge_io {
  std::shared_ptr<pipe_core> end;
  std::mutex mutex;
  std::condition_variable room;
  std::size_t messages = 0;  // forwarded, not yet acknowledged
  std::size_t bytes = 0;
  bool stopping = false;
  std::thread reader;

  /// Waits until one more message of `n` bytes may go; false when stopping.
  bool reserve(std::size_t n) {
    std::unique_lock lock{mutex};
    room.wait(lock, [&] {
      return stopping || (messages < max_unacknowledged_messages && (bytes == 0 || bytes + n <= max_unacknowledged_bytes));
    });
    if (stopping) return false;
    ++messages;
    bytes += n;
    return true;
  }
  void acknowledged(std::size_t n) {
    {
      std::lock_guard lock{mutex};
      messages -= std::min<std::size_t>(messages, 1);
      bytes -= std::min(bytes, n);
    }
    room.notify_all();
  }
  void stop() {
    {
      std::lock_guard lock{mutex};
      stopping = true;
    }
    room.notify_all();
    end->close();  // a blocked receive fails within 100 ms
    if (reader.joinable()) reader.join();
  }
};

/// Forwards every message our socket receives to `peer`, then its end of stream.
void read_loop(const std::shared_ptr<bridge_io>& io, const caf::actor& self, const caf::actor& peer) {
  for (;;) {
    pipe_core::message m;
    std::error_code ec;
    if (!io->end->receive(m, mproc::detail::forever, ec)) break;  // end of stream, closed, garbage
    std::string bytes;
    try {
      m.decode([&](std::span<const std::byte> record) {
        reader r{record.data(), record.size()};
        r.take_pieces(record.size(), [&](const std::byte* p, std::size_t n) { bytes.append(reinterpret_cast<const char*>(p), n); });
      });
    } catch (const error&) {
      break;
    }
    if (!io->reserve(bytes.size())) return;
    caf::anon_send(peer, bridge_data_atom::value, m.type_id, std::move(bytes));
  }
  caf::anon_send(peer, bridge_eof_atom::value);
  caf::anon_send(self, bridge_read_done_atom::value);
}

struct bridge_state {
  std::shared_ptr<bridge_io> io;
  caf::actor peer;
  bool reader_done = false;   // our socket reached its end (the peer was told)
  bool peer_done = false;     // the peer's did (our socket is shut for writing)
  bool write_failed = false;  // our socket takes nothing more
  std::vector<std::uint64_t> unsent_acks;  // for data that came before we knew the peer
  static inline const char* name = "mproc.cluster.pipe_bridge";
};

using bridge_actor = caf::stateful_actor<bridge_state>;

void finish_if_done(bridge_actor* self) {
  auto& st = self->state;
  if (st.reader_done && (st.peer_done || st.write_failed)) self->quit();
}

void connect(bridge_actor* self, caf::actor peer) {
  auto& st = self->state;
  if (st.peer || !peer) return;
  st.peer = peer;
  self->monitor(peer);
  for (auto n : st.unsent_acks) self->anon_send(peer, bridge_ack_atom::value, n);
  st.unsent_acks.clear();
  st.io->reader = std::thread{[io = st.io, me = caf::actor_cast<caf::actor>(self), peer] { read_loop(io, me, peer); }};
}

caf::behavior bridge(bridge_actor* self, std::shared_ptr<pipe_core> end, caf::actor peer) {
  auto io = std::make_shared<bridge_io>();
  io->end = std::move(end);
  self->state.io = io;
  // Also when the actor ends by an exit message: the thread must not outlive it.
  self->attach_functor([io] { io->stop(); });
  // The other side ended or was lost: close ours, so our user sees the end of the stream.
  self->set_down_handler([self](const caf::down_msg&) { self->quit(); });
  connect(self, std::move(peer));
  return {
      [self](bridge_peer_atom, const caf::actor& other_side) { connect(self, other_side); },
      [self](bridge_data_atom, std::uint64_t type_id, const std::string& bytes) {
        auto& st = self->state;
        if (!st.write_failed) {
          std::error_code ec;
          st.io->end->send(type_id, [&](writer& w) { w.raw(bytes.data(), bytes.size()); }, ec);
          if (ec) {
            st.write_failed = true;
            finish_if_done(self);
          }
        }
        auto n = static_cast<std::uint64_t>(bytes.size());
        if (st.peer) self->anon_send(st.peer, bridge_ack_atom::value, n);
        else st.unsent_acks.push_back(n);
      },
      [self](bridge_ack_atom, std::uint64_t n) { self->state.io->acknowledged(n); },
      [self](bridge_eof_atom) {
        auto& st = self->state;
        st.peer_done = true;
        ::shutdown(st.io->end->native_handle(), SHUT_WR);
        finish_if_done(self);
      },
      [self](bridge_read_done_atom) {
        self->state.reader_done = true;
        finish_if_done(self);
      },
  };
}

}  // namespace

caf::actor start_pipe_bridge(std::shared_ptr<pipe_core> end, caf::actor peer) {
  auto actor = actor_system().spawn<caf::detached>(bridge, std::move(end), std::move(peer));
  end_with_node(actor);
  return actor;
}

}  // namespace mproc::cluster::detail
