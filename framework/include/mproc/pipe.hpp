// mproc/pipe.hpp — the two ends of a typed connection between two processes
// (multiprocessing.Pipe).
//
//   auto [a, b] = mproc::make_pipe<std::string>();          // duplex: both ends send and recv
//   auto [r, w] = mproc::make_simplex_pipe<int>();          // r only receives, w only sends
//   w.send(42);  r.recv();                                  // r.send(1) does not compile
//
// A pipe is a connected Unix stream socket pair. Each message is one frame (type id, length,
// value) written with one syscall, so a round trip costs little more than two raw socket
// writes. Closing an end — close(), or the last handle of it in every process going away —
// makes the peer's recv report errc::end_of_stream once it has received everything sent before.
//
// Handing an end to another process: pass it as an argument (or a member of a process
// subclass), with any start method; forkserver and spawn children receive exactly the ends they
// were given (the descriptors travel with the start message). Close your copy of an end you gave
// away: the peer sees end_of_stream only once every copy of an end is closed. A fork child
// inherits every descriptor of the parent, the other end of its own pipe included, as with
// Python's Pipe under fork: close what it does not use (a lambda can), or end the conversation
// in-band. Inside a queue message an end cannot travel (errc::invalid_argument).
//
// Errors: throwing forms (mproc::error) and std::error_code forms. recv on a message of another
// type: errc::wrong_type (the message is consumed). Garbage: errc::bad_message.
// Thread safety: any number of threads may send and receive on one end; sends never interleave.
// close() from another thread makes blocked calls fail with errc::closed within 100 ms.
// Destructor: releases the handle; the descriptor closes with the last copy in this process.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "mproc/detail/pipe_core.hpp"
#include "mproc/detail/record_encoding.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/error.hpp"
#include "mproc/serialization.hpp"

namespace mproc {

namespace detail {
struct raw_bytes_tag {};  // the type id of send_bytes messages
}  // namespace detail

template <class T, bool CanRead, bool CanWrite>
class basic_pipe_end {
  static_assert(serializable<T>, "mproc::pipe<T>: T must be mproc::serializable (see mproc/serialization.hpp)");
  friend struct codec<basic_pipe_end>;
  template <class U>
  friend std::pair<basic_pipe_end<U, true, true>, basic_pipe_end<U, true, true>> make_pipe();
  template <class U>
  friend std::pair<basic_pipe_end<U, true, false>, basic_pipe_end<U, false, true>> make_simplex_pipe();

 public:
  using value_type = T;
  using duration = std::chrono::steady_clock::duration;

  /// An empty end; every call fails with errc::invalid_argument.
  basic_pipe_end() = default;
  bool valid() const noexcept { return core_ != nullptr; }

  // ---- sending ----
  void send(const T& value)
    requires CanWrite
  {
    std::error_code ec;
    send(value, ec);
    throw_if(ec, "mproc::pipe::send");
  }
  void send(const T& value, std::error_code& ec)
    requires CanWrite
  {
    if (!check(ec)) return;
    core_->send(detail::wire::type_id<T>(), [&](writer& w) { mproc::encode(w, value); }, ec);
  }
  /// Raw bytes (Connection.send_bytes); the peer takes them with recv_bytes().
  void send_bytes(std::span<const std::byte> bytes)
    requires CanWrite
  {
    std::error_code ec;
    send_bytes(bytes, ec);
    throw_if(ec, "mproc::pipe::send_bytes");
  }
  void send_bytes(std::span<const std::byte> bytes, std::error_code& ec)
    requires CanWrite
  {
    if (!check(ec)) return;
    core_->send(detail::wire::type_id<detail::raw_bytes_tag>(), [&](writer& w) { w.raw(bytes.data(), bytes.size()); },
                ec);
  }

  // ---- receiving ----
  /// The next message; throws errc::end_of_stream once the peer closed and all was received.
  T recv()
    requires CanRead
  {
    std::error_code ec;
    auto v = receive(detail::forever, ec);
    throw_if(ec, "mproc::pipe::recv");
    return std::move(*v);
  }
  std::optional<T> recv(std::error_code& ec)
    requires CanRead
  {
    return receive(detail::forever, ec);
  }
  /// Waits at most `timeout`; errc::empty when nothing came.
  std::optional<T> recv(duration timeout, std::error_code& ec)
    requires CanRead
  {
    return receive(detail::deadline_after(timeout), ec);
  }
  /// The next message if one comes within `timeout`; nullopt otherwise. Other errors throw.
  std::optional<T> recv_for(duration timeout)
    requires CanRead
  {
    std::error_code ec;
    auto v = receive(detail::deadline_after(timeout), ec);
    if (ec == errc::empty) return std::nullopt;
    throw_if(ec, "mproc::pipe::recv_for");
    return v;
  }
  /// The next message's bytes, whatever was sent (send_bytes, or send's encoding).
  std::vector<std::byte> recv_bytes()
    requires CanRead
  {
    std::error_code ec;
    auto b = recv_bytes(ec);
    throw_if(ec, "mproc::pipe::recv_bytes");
    return b;
  }
  std::vector<std::byte> recv_bytes(std::error_code& ec)
    requires CanRead
  {
    detail::pipe_core::message m;
    std::vector<std::byte> bytes;
    if (!check(ec) || !core_->receive(m, detail::forever, ec)) return bytes;
    try {
      m.decode([&](std::span<const std::byte> b) { bytes.assign(b.begin(), b.end()); });
    } catch (const error& e) {
      ec = e.code();
    }
    return bytes;
  }
  /// True when recv would not wait (a message, or the end of the stream, is there);
  /// waits at most `timeout` for that.
  bool poll(duration timeout = duration::zero())
    requires CanRead
  {
    std::error_code ec;
    bool ready = check(ec) && core_->poll(detail::deadline_after(timeout), ec);
    throw_if(ec, "mproc::pipe::poll");
    return ready;
  }

  /// Closes this end in this process (every copy of the handle here).
  void close() {
    if (core_) core_->close();
  }
  /// The socket, for waiting on several things at once; -1 when closed or empty.
  int native_handle() const noexcept { return core_ ? core_->native_handle() : -1; }

 private:
  explicit basic_pipe_end(std::shared_ptr<detail::pipe_core> core) : core_(std::move(core)) {}
  bool check(std::error_code& ec) const {
    if (core_) return ec.clear(), true;
    ec = make_error_code(errc::invalid_argument);
    return false;
  }
  std::optional<T> receive(detail::deadline until, std::error_code& ec) {
    detail::pipe_core::message m;
    if (!check(ec) || !core_->receive(m, until, ec)) return std::nullopt;
    if (m.type_id != detail::wire::type_id<T>()) {
      ec = make_error_code(errc::wrong_type);
      return std::nullopt;
    }
    try {
      T value{};
      m.decode([&](std::span<const std::byte> b) { detail::wire::decode_record(b, value); });
      return value;
    } catch (const error& e) {
      ec = detail::decode_failure(e);
      return std::nullopt;
    }
  }

  std::shared_ptr<detail::pipe_core> core_;
};

/// A pipe end travels as an argument of a process (any start method), inside a queue message or
/// inside a pipe message: its descriptor goes along (SCM_RIGHTS). The receiving parameter must want no more than the end can do: a
/// pipe_writer cannot become a pipe<T> or a pipe_reader (errc::wrong_type).
template <class T, bool CanRead, bool CanWrite>
struct codec<basic_pipe_end<T, CanRead, CanWrite>> {
  static constexpr bool enabled = true;
  static constexpr std::uint8_t read_bit = 1, write_bit = 2;
  static void encode(writer& w, const basic_pipe_end<T, CanRead, CanWrite>& end) {
    if (end.native_handle() < 0) throw error(errc::invalid_argument, "passing an empty or closed pipe end");
    std::uint32_t index = detail::pass_fd(end.native_handle(), "a pipe end");
    std::uint8_t can = (CanRead ? read_bit : 0) | (CanWrite ? write_bit : 0);
    mproc::encode(w, index);
    mproc::encode(w, detail::wire::type_id<T>());
    mproc::encode(w, can);
  }
  static void decode(reader& r, basic_pipe_end<T, CanRead, CanWrite>& end) {
    std::uint32_t index = 0;
    std::uint64_t type = 0;
    std::uint8_t can = 0;
    mproc::decode(r, index);
    mproc::decode(r, type);
    mproc::decode(r, can);
    if (type != detail::wire::type_id<T>()) throw error(errc::wrong_type, "received a pipe end of another message type");
    if ((CanRead && !(can & read_bit)) || (CanWrite && !(can & write_bit)))
      throw error(errc::wrong_type, "received a pipe end that cannot do what the parameter asks");
    int fd = detail::receive_fd(index, "a pipe end");
    end = basic_pipe_end<T, CanRead, CanWrite>{std::make_shared<detail::pipe_core>(fd)};
  }
};

/// A duplex end: sends and receives.
template <class T>
using pipe = basic_pipe_end<T, true, true>;
/// The receiving end of a simplex pipe.
template <class T>
using pipe_reader = basic_pipe_end<T, true, false>;
/// The sending end of a simplex pipe.
template <class T>
using pipe_writer = basic_pipe_end<T, false, true>;

/// Pipe(duplex=True): two ends that both send and receive.
template <class T>
std::pair<pipe<T>, pipe<T>> make_pipe() {
  std::error_code ec;
  auto [a, b] = detail::pipe_core::make_pair(ec);
  throw_if(ec, "mproc::make_pipe");
  return {pipe<T>{std::move(a)}, pipe<T>{std::move(b)}};
}

/// Pipe(duplex=False): a reader end and a writer end.
template <class T>
std::pair<pipe_reader<T>, pipe_writer<T>> make_simplex_pipe() {
  std::error_code ec;
  auto [a, b] = detail::pipe_core::make_pair(ec);
  throw_if(ec, "mproc::make_simplex_pipe");
  return {pipe_reader<T>{std::move(a)}, pipe_writer<T>{std::move(b)}};
}

}  // namespace mproc
