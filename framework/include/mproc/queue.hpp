// mproc/queue.hpp — a typed multi-producer, multi-consumer queue across the processes of a
// node (multiprocessing.Queue and JoinableQueue).
//
//   void produce(mproc::queue<std::string> q) { for (auto v : {"A", "B", "C"}) q.put(v); }
//   MPROC_ENTRY(produce);
//   ...
//   auto q = node.make_queue<std::string>();     // or make_queue<T>(maxsize) for a bounded one
//   node.spawn(produce, q);
//   std::string v = q.get();                     // "A"
//
// The queue lives in the process that made it (its owner), which keeps the one authoritative
// store and count; other processes reach it over a private Unix-domain socket. A handle is a
// cheap shared reference: copy it, pass it to spawned functions or inside messages (it travels
// by name), use it from any thread. Every message is delivered exactly once, in FIFO order per
// producer.
//
// Semantics, and where they differ from Python:
//  - put never blocks on an unbounded queue; on a bounded one it waits for room (a timed put
//    fails with errc::full). put encodes the value at once: an encoding error is its error.
//    A process may exit right after put: its puts are delivered before it ends.
//  - get waits for a message; a timed get fails with errc::empty, or with errc::timeout when a
//    large message had come but its producer was still writing its body at the deadline (the
//    message stays first in the queue, for the next get). A get that may not wait (try_get,
//    a zero timeout) takes a large message only once its body is whole. Once the queue is
//    closed and drained, get fails with errc::closed instead of waiting forever.
//    get_into(value) is get into a value you keep, reusing its memory (for large messages).
//  - qsize() is exact: the owner's count of messages put (and arrived) and not yet taken.
//  - close() is for the whole queue (Python's close() is per process): further puts fail with
//    errc::closed everywhere; getters drain what is left, then get errc::closed.
//  - task_done()/join() as JoinableQueue: join waits until every message put has been matched
//    by a task_done(); one task_done() too many is errc::invalid_argument.
//  - Writers and readers: queue<T> can put and get; queue_reader<T> (q.reader(), or any
//    queue<T> converted) can only get. Once no handle that can put is left anywhere — none in
//    any process, none on its way as a process argument or inside a message — a get on the
//    empty queue fails with errc::end_of_stream at once instead of waiting for ever (a crashed
//    producer included). So give consumers a queue_reader, and drop the writers you do not use.
//  - When the owner's process ends, the queue ends with it: calls fail with errc::node_closed.
//
// Errors: every call has a throwing form (mproc::error) and a std::error_code form.
// Thread safety: all members, from any number of threads and processes.
// Destructor: releases this handle. When the last handle of a (non-owner) process goes, its
// pending puts are delivered first (bounded wait), and messages it fetched but did not consume
// are put back at the front of the queue.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <typeinfo>
#include <utility>

#include "mproc/detail/queue_core.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/error.hpp"
#include "mproc/node.hpp"
#include "mproc/serialization.hpp"

namespace mproc {

namespace detail {


}  // namespace detail

namespace detail {
struct queue_access;
}

/// queue<T> (can put and get) and queue_reader<T> (can only get) are the two faces of a queue
/// handle; see the header comment.
template <class T, bool CanPut>
class basic_queue {
  friend struct detail::queue_access;
  template <class, bool>
  friend class basic_queue;
  static_assert(serializable<T>, "mproc::queue<T>: T must be mproc::serializable (see mproc/serialization.hpp)");

 public:
  using value_type = T;
  using duration = std::chrono::steady_clock::duration;

  /// An empty handle; every call fails with errc::invalid_argument until one is assigned.
  basic_queue() = default;
  /// A new queue owned by this process; maxsize 0 means unbounded.
  explicit basic_queue(node&, std::size_t maxsize = 0)
    requires CanPut
  {
    std::error_code ec;
    auto core = detail::create_queue(detail::wire::type_id<T>(), typeid(T), maxsize, ec);
    throw_if(ec, "mproc::queue");
    handle_ = detail::queue_handle{std::move(core), typeid(T), true};
  }

  bool valid() const noexcept { return handle_.valid(); }
  /// A read-only handle to the same queue: it can get, and does not count as a writer.
  basic_queue<T, false> reader() const {
    basic_queue<T, false> r;
    r.handle_ = handle_.as_reader();
    return r;
  }
  /// Any handle converts to a reader.
  operator basic_queue<T, false>() const  // NOLINT: implicit, like a derived-to-base conversion
    requires CanPut
  {
    return reader();
  }

  // ---- put ----
  void put(const T& value)
    requires CanPut
  { throw_if(put_until(value, detail::forever), "mproc::queue::put"); }
  void put(const T& value, std::error_code& ec)
    requires CanPut
  { ec = put_until(value, detail::forever); }
  /// Waits at most `timeout` for room; errc::full when none came.
  void put(const T& value, duration timeout)
    requires CanPut
  {
    throw_if(put_until(value, detail::deadline_after(timeout)), "mproc::queue::put");
  }
  void put(const T& value, duration timeout, std::error_code& ec)
    requires CanPut
  {
    ec = put_until(value, detail::deadline_after(timeout));
  }
  /// Puts only when there is room now; false when full. Other errors throw.
  bool try_put(const T& value)
    requires CanPut
  {
    auto ec = put_until(value, std::chrono::steady_clock::now());
    if (ec == errc::full) return false;
    throw_if(ec, "mproc::queue::try_put");
    return true;
  }

  // ---- get ----
  T get() { return take_or_throw(detail::forever, "mproc::queue::get"); }
  /// Waits at most `timeout`; throws errc::empty when nothing came (errc::timeout: see above).
  T get(duration timeout) { return take_or_throw(detail::deadline_after(timeout), "mproc::queue::get"); }
  std::optional<T> get(std::error_code& ec) { return take(detail::forever, ec); }
  std::optional<T> get(duration timeout, std::error_code& ec) { return take(detail::deadline_after(timeout), ec); }
  /// A message if one is there now; nullopt when empty. Other errors throw.
  std::optional<T> try_get() { return get_for(duration::zero()); }
  /// A message if one comes within `timeout`; nullopt otherwise (also when a large message's
  /// body is still being written: it stays first). Other errors throw.
  std::optional<T> get_for(duration timeout) {
    std::error_code ec;
    auto v = take(detail::deadline_after(timeout), ec);
    if (ec == errc::empty || ec == errc::timeout) return std::nullopt;
    throw_if(ec, "mproc::queue::get_for");
    return v;
  }

  /// get() into `out`, reusing what it holds: a vector or string keeps its capacity, so a
  /// consumer of bulk messages fills one buffer again instead of fresh memory each time (on a
  /// VM, fresh memory is most of what a large message costs). When it fails, `out` holds some
  /// valid value. (A codec of your own must replace the whole value, as the built-in ones do.)
  void get_into(T& out) { throw_if(take_into(out, detail::forever), "mproc::queue::get_into"); }
  void get_into(T& out, std::error_code& ec) { ec = take_into(out, detail::forever); }
  /// Waits at most `timeout`; errc::empty when nothing came.
  void get_into(T& out, duration timeout) {
    throw_if(take_into(out, detail::deadline_after(timeout)), "mproc::queue::get_into");
  }
  void get_into(T& out, duration timeout, std::error_code& ec) { ec = take_into(out, detail::deadline_after(timeout)); }

  // ---- state ----
  /// Messages in the queue now (exact: the owner's count).
  std::size_t qsize() const {
    std::error_code ec;
    auto n = qsize(ec);
    throw_if(ec, "mproc::queue::qsize");
    return n;
  }
  std::size_t qsize(std::error_code& ec) const {
    if (auto* c = core(ec)) return c->qsize(ec);
    return 0;
  }
  bool empty() const { return qsize() == 0; }
  /// True when a bounded queue holds maxsize messages.
  bool full() const { return maxsize() != 0 && qsize() >= maxsize(); }
  /// 0 when unbounded.
  std::size_t maxsize() const { return handle_.core().maxsize(); }

  /// Closes the queue for everybody: puts fail from now on, getters drain then see closed.
  void close() {
    std::error_code ec;
    close(ec);
    throw_if(ec, "mproc::queue::close");
  }
  void close(std::error_code& ec) {
    if (auto* c = core(ec)) c->close(ec);
  }

  /// One message taken with get() is fully processed (JoinableQueue.task_done).
  void task_done() {
    std::error_code ec;
    task_done(ec);
    throw_if(ec, "mproc::queue::task_done");
  }
  void task_done(std::error_code& ec) {
    if (auto* c = core(ec)) c->task_done(ec);
  }
  /// Waits until every message put has been matched by task_done().
  void join() { throw_if(join_until(detail::forever), "mproc::queue::join"); }
  /// False when `timeout` passed first.
  bool join(duration timeout) {
    auto ec = join_until(detail::deadline_after(timeout));
    if (ec == errc::timeout) return false;
    throw_if(ec, "mproc::queue::join");
    return true;
  }
  void join(std::error_code& ec) { ec = join_until(detail::forever); }

  /// Internal: the name by which this handle travels.
  const detail::queue_token& token() const { return handle_.token(); }
  /// Internal: a handle for a queue known by name (what decoding a handle does).
  static basic_queue attach(const detail::queue_token& token) {
    std::error_code ec;
    auto core = detail::open_queue(token, typeid(T), ec);
    throw_if(ec, "mproc::queue (received handle)");
    basic_queue q;
    q.handle_ = detail::queue_handle{std::move(core), typeid(T), CanPut};
    return q;
  }

 private:
  static void encode_value(writer& w, const void* v) { mproc::encode(w, *static_cast<const T*>(v)); }
  static void decode_value(std::span<const std::byte> record, void* out) {
    T x{};
    detail::wire::decode_record(record, x);
    static_cast<std::optional<T>*>(out)->emplace(std::move(x));
  }

  static void decode_in_place(std::span<const std::byte> record, void* out) {
    detail::wire::decode_record(record, *static_cast<T*>(out));
  }

  detail::queue_core* core(std::error_code& ec) const {
    if (!handle_.valid()) {
      ec = make_error_code(errc::invalid_argument);
      return nullptr;
    }
    ec.clear();
    return &handle_.core();
  }
  std::error_code put_until(const T& value, detail::deadline until) {
    std::error_code ec;
    if (auto* c = core(ec)) c->put(&encode_value, &value, until, ec);
    return ec;
  }
  std::optional<T> take(detail::deadline until, std::error_code& ec) {
    std::optional<T> out;
    if (auto* c = core(ec)) c->get(&decode_value, &out, until, ec);
    if (ec) out.reset();
    return out;
  }
  std::error_code take_into(T& out, detail::deadline until) {
    std::error_code ec;
    if (auto* c = core(ec)) c->get(&decode_in_place, &out, until, ec);
    return ec;
  }
  T take_or_throw(detail::deadline until, const char* what) {
    std::error_code ec;
    auto v = take(until, ec);
    throw_if(ec, what);
    return std::move(*v);
  }
  std::error_code join_until(detail::deadline until) {
    std::error_code ec;
    if (auto* c = core(ec)) c->join(until, ec);
    return ec;
  }

  detail::queue_handle handle_;
};

namespace detail {
/// For mproc::wait and the asynchronous face: the core behind a handle.
struct queue_access {
  template <class T, bool CanPut>
  static queue_core* core(const basic_queue<T, CanPut>& q, std::error_code& ec) {
    return q.core(ec);
  }
  template <class T, bool CanPut>
  static std::shared_ptr<queue_core> shared_core(const basic_queue<T, CanPut>& q, std::error_code& ec) {
    if (!q.valid()) return ec = make_error_code(errc::invalid_argument), nullptr;
    ec.clear();
    return q.handle_.shared_core();
  }
};
}  // namespace detail

template <class T>
using queue_reader = basic_queue<T, false>;

template <class T>
queue<T> node::make_queue(std::size_t maxsize) {
  return queue<T>{*this, maxsize};
}

/// A queue handle travels by name: passed to a spawned function or inside a message, it
/// reaches the same queue in the receiving process. A handle that can put travels with a
/// ticket, so it counts as a writer on its way (until the receiver opens it, or the process it
/// was given to ends). A queue_reader cannot become a queue<T> on arrival (errc::wrong_type).
template <class T, bool CanPut>
struct codec<basic_queue<T, CanPut>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const basic_queue<T, CanPut>& q) {
    if (!q.valid()) throw error(errc::invalid_argument, "encoding an empty mproc::queue handle");
    std::error_code ec;
    auto core = detail::queue_access::shared_core(q, ec);
    throw_if(ec, "mproc::queue (encoding a handle)");
    detail::queue_token token = q.token();
    auto* out = detail::transfer_out::current();
    if constexpr (CanPut) {
      token.ticket = core->issue_ticket();
      if (out != nullptr && out->for_process())
        out->bundle().at_end.push_back([core, ticket = token.ticket] { core->release_ticket(ticket); });
    }
    if (out != nullptr && out->exporter() != nullptr) token = out->exporter()->export_queue(core, token);
    mproc::encode(w, token);
  }
  static void decode(reader& r, basic_queue<T, CanPut>& q) {
    detail::queue_token token;
    mproc::decode(r, token);
    if (token.type_id != detail::wire::type_id<T>())
      throw error(errc::wrong_type, "received a queue handle of another message type");
    if (CanPut && token.ticket == 0)
      throw error(errc::wrong_type, "received a read-only queue handle where one that can put is expected");
    q = basic_queue<T, CanPut>::attach(token);  // our writer presence (if any) exists from here on
    if (token.ticket != 0) {
      std::error_code ec;
      if (auto* c = detail::queue_access::core(q, ec)) c->redeem_ticket(token.ticket);
    }
  }
};

}  // namespace mproc
