// mproc/detail/queue_core.hpp — the type-erased machinery behind mproc::queue<T>.
//
// A queue lives in the process that created it (its owner), which keeps the one authoritative
// store and count. Handles in the owner use it directly; handles in other processes reach it
// through one Unix-domain connection per process and queue (see docs/mailboxes.md).
//
// Thread safety: every member of queue_core may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>

#include "mproc/detail/deadline.hpp"
#include "mproc/serialization.hpp"

namespace mproc::detail {


/// What identifies a queue in any process of the node: the owner's socket and the queue id.
struct queue_token {
  std::string path;
  std::uint64_t queue_id = 0;
  std::uint64_t type_id = 0;
  std::uint64_t ticket = 0;  // a writer handle in flight (see issue_ticket); 0 for a reader
};
template <class F>
void inspect(F& f, queue_token& x) {
  f(x.path, x.queue_id, x.type_id, x.ticket);
}

class queue_core {
 public:
  using encode_fn = void (*)(writer&, const void* value);
  /// Decodes one record into *value; throws mproc::error(errc::bad_message) when it does not.
  using decode_fn = void (*)(std::span<const std::byte> record, void* value);

  virtual ~queue_core() = default;
  virtual void put(encode_fn encode, const void* value, deadline until, std::error_code& ec) = 0;
  virtual void get(decode_fn decode, void* value, deadline until, std::error_code& ec) = 0;
  virtual std::size_t qsize(std::error_code& ec) = 0;
  /// 0 for an unbounded queue.
  virtual std::size_t maxsize() const noexcept = 0;
  virtual void close(std::error_code& ec) = 0;
  virtual void task_done(std::error_code& ec) = 0;
  virtual void join(deadline until, std::error_code& ec) = 0;
  /// Waits until this process's puts have reached the owner (true), or the deadline.
  virtual bool flush(deadline until) = 0;
  virtual const queue_token& token() const noexcept = 0;
  /// For mproc::wait: an fd that is readable while get() would not block (a message, or a
  /// final error such as closed); valid until the matching unwatch(). A consumer in another
  /// process first asks the owner for data, so the fd can become readable at all.
  virtual int watch(std::error_code& ec) = 0;
  virtual void unwatch() noexcept = 0;

  // Writers. A get on an empty, open queue reports errc::end_of_stream once no writer is left:
  // no process holds a handle that can put, and none is on its way to one.
  /// Alive while this process holds a handle that can put (all such handles share it).
  virtual std::shared_ptr<void> writer_presence() = 0;
  /// A writer handle is being encoded: it counts as a writer until redeem or release.
  virtual std::uint64_t issue_ticket() = 0;
  /// The handle arrived (called in the receiving process, after its writer presence exists).
  virtual void redeem_ticket(std::uint64_t ticket) = 0;
  /// The process it was sent to has ended (redeemed or not).
  virtual void release_ticket(std::uint64_t ticket) = 0;
};

/// Queues served from another host (mproc::cluster) travel with a token whose path starts with
/// this prefix; the rest names the serving gateway, not a socket.
inline constexpr std::string_view remote_queue_prefix = "mproc-cluster:";
using remote_queue_opener = std::shared_ptr<queue_core> (*)(const queue_token& token, const std::type_info& type,
                                                            std::error_code& ec);
/// Installed by mproc::cluster (a static initializer of every program that links it).
void set_remote_queue_opener(remote_queue_opener opener) noexcept;
/// The core for a remote token; errc::invalid_argument in a program without mproc::cluster.
std::shared_ptr<queue_core> open_remote_queue(const queue_token& token, const std::type_info& type,
                                              std::error_code& ec);

/// While a transfer_out has an exporter (the arguments of a process on another host), every
/// queue handle encoded travels as the token export_queue returns: a handle served from here.
/// export_queue may throw mproc::error (a handle that cannot go there).
class queue_exporter {
 public:
  virtual queue_token export_queue(const std::shared_ptr<queue_core>& core, const queue_token& token) = 0;

 protected:
  ~queue_exporter() = default;
};

/// A ticket id unique across the processes of a node (pid and a counter).
std::uint64_t new_ticket_id() noexcept;

/// Creates a queue owned by the calling process (which needs an mproc::node).
std::shared_ptr<queue_core> create_queue(std::uint64_t type_id, const std::type_info& type, std::size_t maxsize,
                                         std::error_code& ec);
/// The calling process's handle core for a queue: the owner's own, or a connection to it
/// (one per process and queue, shared by every handle). errc::wrong_type when T differs.
std::shared_ptr<queue_core> open_queue(const queue_token& token, const std::type_info& type, std::error_code& ec);

/// Bumped in the child after every fork(), so handles copied by fork know to reconnect.
std::uint64_t fork_generation() noexcept;

/// The untyped part of a queue handle: the core, and what makes it survive fork().
class queue_handle {
 public:
  queue_handle() = default;
  /// `writer`: the handle can put, and counts as a writer of the queue while it lives.
  queue_handle(std::shared_ptr<queue_core> core, const std::type_info& type, bool writer)
      : core_(std::move(core)),
        presence_(writer ? core_->writer_presence() : nullptr),
        type_(&type),
        generation_(fork_generation()) {}
  queue_handle(const queue_handle&) = default;
  queue_handle(queue_handle&&) noexcept = default;
  queue_handle& operator=(const queue_handle& o) {
    if (this != &o) {
      release_if_stale();
      core_ = o.core_;
      presence_ = o.presence_;
      type_ = o.type_;
      generation_ = o.generation_;
    }
    return *this;
  }
  queue_handle& operator=(queue_handle&& o) noexcept {
    if (this != &o) {
      release_if_stale();
      core_ = std::move(o.core_);
      presence_ = std::move(o.presence_);
      type_ = o.type_;
      generation_ = o.generation_;
    }
    return *this;
  }
  ~queue_handle() { release_if_stale(); }

  bool valid() const noexcept { return core_ != nullptr; }
  /// The core for this process. A handle copied by fork() reaches the queue anew (the parent's
  /// connection belongs to the parent). errc::invalid_argument for an empty handle.
  queue_core& core() const;
  const queue_token& token() const;
  /// core() as a shared pointer (for what must outlive the handle, such as a ticket release).
  std::shared_ptr<queue_core> shared_core() const;
  /// A copy of this handle for a reader: same queue, no writer presence.
  queue_handle as_reader() const;

 private:
  /// A core inherited through fork() belongs to the parent's runtime: never touch it again.
  void release_if_stale() noexcept;

  std::shared_ptr<queue_core> core_;
  std::shared_ptr<void> presence_;  // writer handles only
  const std::type_info* type_ = nullptr;
  std::uint64_t generation_ = 0;
};


/// Delivers pending puts, ends every connection and the queues this process owns (node shutdown).
void shutdown_mailboxes() noexcept;

}  // namespace mproc::detail
