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
#include <system_error>
#include <typeinfo>

#include "mproc/serialization.hpp"

namespace mproc::detail {

using deadline = std::chrono::steady_clock::time_point;

/// What identifies a queue in any process of the node: the owner's socket and the queue id.
struct queue_token {
  std::string path;
  std::uint64_t queue_id = 0;
  std::uint64_t type_id = 0;
};
template <class F>
void inspect(F& f, queue_token& x) {
  f(x.path, x.queue_id, x.type_id);
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
};

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
  queue_handle(std::shared_ptr<queue_core> core, const std::type_info& type)
      : core_(std::move(core)), type_(&type), generation_(fork_generation()) {}
  queue_handle(const queue_handle&) = default;
  queue_handle(queue_handle&&) noexcept = default;
  queue_handle& operator=(const queue_handle& o) {
    if (this != &o) {
      release_if_stale();
      core_ = o.core_;
      type_ = o.type_;
      generation_ = o.generation_;
    }
    return *this;
  }
  queue_handle& operator=(queue_handle&& o) noexcept {
    if (this != &o) {
      release_if_stale();
      core_ = std::move(o.core_);
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

 private:
  /// A core inherited through fork() belongs to the parent's runtime: never touch it again.
  void release_if_stale() noexcept;

  std::shared_ptr<queue_core> core_;
  const std::type_info* type_ = nullptr;
  std::uint64_t generation_ = 0;
};


/// Flushes every queue connection of this process (used at process exit), at most until
/// `until`. Reports on stderr what could not be delivered.
void flush_mailboxes(deadline until) noexcept;
/// Delivers pending puts, ends every connection and the queues this process owns (node shutdown).
void shutdown_mailboxes() noexcept;

}  // namespace mproc::detail
