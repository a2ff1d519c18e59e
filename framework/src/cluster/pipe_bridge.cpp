#include "pipe_bridge.hpp"

#include <sys/socket.h>

#include <caf/all.hpp>

#include <condition_variable>
#include <deque>
#include <optional>
#include <vector>
#include <mutex>
#include <string>
#include <thread>

#include "mproc/actor_runtime.hpp"
#include "../node_impl.hpp"
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
/// How long a side that ends may still write what had come before it closes its socket.
constexpr auto final_write_limit = std::chrono::seconds{1};

using bridge_write_failed_atom = caf::atom_constant<caf::atom("mp_bwfail")>;

/// A side's socket and threads; shared by the actor and its threads.
struct bridge_io {
  std::shared_ptr<pipe_core> end;
  std::mutex mutex;
  std::condition_variable changed;
  caf::actor self;  // the side's actor: the threads tell it what happened
  caf::actor peer;  // the other side, once known
  std::vector<std::uint64_t> unsent_acks;  // owed for data that came before we knew the peer
  // Reading: forwarded and not yet acknowledged.
  std::size_t messages = 0;
  std::size_t bytes = 0;
  // Writing: what came from the peer, in order; an empty optional is its end of stream.
  std::deque<std::optional<std::pair<std::uint64_t, std::string>>> outbox;
  bool write_failed = false;
  bool finishing = false;  // the actor ended: write what is there, then close
  bool closed = false;
  std::thread reading;
  std::thread writing;

  /// Waits until one more message of `n` bytes may go; false once closed.
  bool reserve(std::size_t n) {
    std::unique_lock lock{mutex};
    changed.wait(lock, [&] {
      return closed || (messages < max_unacknowledged_messages && (bytes == 0 || bytes + n <= max_unacknowledged_bytes));
    });
    if (closed) return false;
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
    changed.notify_all();
  }
  void push(std::optional<std::pair<std::uint64_t, std::string>> item) {
    {
      std::lock_guard lock{mutex};
      outbox.push_back(std::move(item));
    }
    changed.notify_all();
  }
  void acknowledge(std::uint64_t n) {
    std::lock_guard lock{mutex};
    if (peer) caf::anon_send(peer, bridge_ack_atom::value, n);
    else unsent_acks.push_back(n);
  }
  /// Writes what comes until the end; closes the socket after the actor ended (or at the limit).
  void write_loop() {
    std::unique_lock lock{mutex};
    std::optional<std::chrono::steady_clock::time_point> limit;
    for (;;) {
      changed.wait(lock, [&] { return !outbox.empty() || finishing; });
      if (finishing && !limit) limit = std::chrono::steady_clock::now() + final_write_limit;
      if (outbox.empty() || (limit && std::chrono::steady_clock::now() > *limit)) break;
      auto item = std::move(outbox.front());
      outbox.pop_front();
      lock.unlock();
      if (!item) {
        ::shutdown(end->native_handle(), SHUT_WR);  // the peer's end of stream, after its data
      } else if (!write_failed) {
        std::error_code ec;
        end->send(item->first, [&](writer& w) { w.raw(item->second.data(), item->second.size()); }, ec);
        if (ec) {
          write_failed = true;
          tell_self(bridge_write_failed_atom::value);
        }
      }
      if (item) acknowledge(item->second.size());
      lock.lock();
    }
    closed = true;
    lock.unlock();
    changed.notify_all();
    end->close();  // a blocked receive fails within 100 ms
  }
  /// Forwards every message our socket receives to the peer, then its end of stream.
  void read_loop() {
    for (;;) {
      pipe_core::message m;
      std::error_code ec;
      if (!end->receive(m, mproc::detail::forever, ec)) break;  // end of stream, closed, garbage
      std::string encoding;
      try {
        m.decode([&](std::span<const std::byte> record) {
          reader r{record.data(), record.size()};
          r.take_pieces(record.size(), [&](const std::byte* p, std::size_t n) { encoding.append(reinterpret_cast<const char*>(p), n); });
        });
      } catch (const error&) {
        break;
      }
      if (!reserve(encoding.size())) return;
      caf::anon_send(peer, bridge_data_atom::value, m.type_id, std::move(encoding));
    }
    caf::anon_send(peer, bridge_eof_atom::value);
    tell_self(bridge_read_done_atom::value);
  }
  template <class Atom>
  void tell_self(Atom what) {
    caf::actor me;
    {
      std::lock_guard lock{mutex};
      me = self;
    }
    if (me) caf::anon_send(me, what);
  }
  /// The actor ended: the writer finishes, then both threads end.
  void finish() {
    {
      std::lock_guard lock{mutex};
      finishing = true;
    }
    changed.notify_all();
  }
  void join() {
    finish();
    {
      std::unique_lock lock{mutex};
      // A write blocked on a reader that does not read: closing the socket fails it.
      if (!changed.wait_for(lock, final_write_limit + std::chrono::milliseconds{200}, [&] { return closed; })) {
        lock.unlock();
        end->close();
      }
    }
    if (writing.joinable()) writing.join();
    if (reading.joinable()) reading.join();
  }
};

/// Every side's io in this process, joined at the node's end (before CAF's system ends: the
/// threads send messages) and whenever a new side starts (those that are done).
struct bridge_threads {
  std::mutex mutex;
  std::vector<std::shared_ptr<bridge_io>> live;
  bool hook_installed = false;

  static bridge_threads& get() {
    static bridge_threads t;
    return t;
  }
  void add(std::shared_ptr<bridge_io> io) {
    std::vector<std::shared_ptr<bridge_io>> done;
    {
      std::lock_guard lock{mutex};
      if (!hook_installed) {
        hook_installed = true;
        mproc::detail::at_node_shutdown([] { get().join_all(); });
      }
      std::erase_if(live, [&](const auto& x) {
        std::lock_guard l{x->mutex};
        if (!x->closed) return false;
        done.push_back(x);
        return true;
      });
      live.push_back(std::move(io));
    }
    for (auto& x : done) x->join();
  }
  void join_all() {
    std::vector<std::shared_ptr<bridge_io>> all;
    {
      std::lock_guard lock{mutex};
      all.swap(live);
      hook_installed = false;
    }
    for (auto& x : all) x->join();
  }
};

struct bridge_state {
  std::shared_ptr<bridge_io> io;
  bool reader_done = false;  // our socket reached its end (the peer was told)
  bool peer_done = false;    // the peer's did (our socket gets shut for writing)
  bool write_failed = false;  // our socket takes nothing more
  static inline const char* name = "mproc.cluster.pipe_bridge";
};

using bridge_actor = caf::stateful_actor<bridge_state>;

void finish_if_done(bridge_actor* self) {
  auto& st = self->state;
  if (st.reader_done && (st.peer_done || st.write_failed)) self->quit();
}

void connect(bridge_actor* self, caf::actor peer) {
  auto& io = *self->state.io;
  {
    std::lock_guard lock{io.mutex};
    if (io.peer || !peer) return;
    io.peer = peer;
    for (auto n : io.unsent_acks) caf::anon_send(peer, bridge_ack_atom::value, n);
    io.unsent_acks.clear();
  }
  self->monitor(peer);
  io.reading = std::thread{[io = self->state.io] { io->read_loop(); }};
}

caf::behavior bridge(bridge_actor* self, std::shared_ptr<bridge_io> io, caf::actor peer) {
  self->state.io = io;
  io->self = caf::actor_cast<caf::actor>(self);
  io->writing = std::thread{[io] { io->write_loop(); }};
  // Also when the actor ends by an exit message. (finish() does not block a CAF thread: the
  // threads are joined later, see bridge_threads.) The io's handle of us goes with it.
  self->attach_functor([io] {
    io->finish();
    std::lock_guard lock{io->mutex};
    io->self = nullptr;
  });
  // The other side ended or was lost: close ours, so our user sees the end of the stream.
  self->set_down_handler([self](const caf::down_msg&) { self->quit(); });
  connect(self, std::move(peer));
  return {
      [self](bridge_peer_atom, const caf::actor& other_side) { connect(self, other_side); },
      [self](bridge_data_atom, std::uint64_t type_id, std::string& encoding) {
        self->state.io->push(std::make_pair(type_id, std::move(encoding)));
      },
      [self](bridge_ack_atom, std::uint64_t n) { self->state.io->acknowledged(n); },
      [self](bridge_eof_atom) {
        self->state.peer_done = true;
        self->state.io->push(std::nullopt);
        finish_if_done(self);
      },
      [self](bridge_read_done_atom) {
        self->state.reader_done = true;
        finish_if_done(self);
      },
      [self](bridge_write_failed_atom) {
        self->state.write_failed = true;
        finish_if_done(self);
      },
  };
}

}  // namespace

caf::actor start_pipe_bridge(std::shared_ptr<pipe_core> end, caf::actor peer) {
  auto io = std::make_shared<bridge_io>();
  io->end = std::move(end);
  bridge_threads::get().add(io);
  auto actor = actor_system().spawn(bridge, io, std::move(peer));
  end_with_node(actor);
  return actor;
}

}  // namespace mproc::cluster::detail
