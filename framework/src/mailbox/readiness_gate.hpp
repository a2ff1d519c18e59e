// Internal: a socket's readiness as the I/O thread sees it, through an epoll set of its own that
// can be switched off (connection.hpp, latency mode).
//
// Why: Asio registers every socket it is given in its epoll set for input, for good, so new
// bytes wake the I/O thread even when another thread reads them. A latency-mode connection lets a
// thread that waits for an answer read the socket itself (connection::read_here); for that to
// save a wake-up, the I/O thread must not be woken by those bytes. So Asio watches this gate (an
// epoll descriptor holding just the socket, readable when the socket has one of `events`), and
// the gate can be closed (those events no longer reach Asio) and opened again.
//
// Reopening does not always wake Asio when the socket is ready meanwhile (epoll only reports an
// item that is not already on its ready list): whoever opens it looks at the socket itself.
//
// Thread safety: open/close from any thread; async_wait on the I/O thread.
// Destructor: closes the epoll descriptor (the socket stays open).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <system_error>
#include <utility>

namespace mproc::detail {

class readiness_gate {
 public:
  /// Watches `socket` for `events` (EPOLLIN, EPOLLOUT), open or closed from the start.
  readiness_gate(boost::asio::io_context& io, int socket, std::uint32_t events, bool open, std::error_code& ec);
  readiness_gate(const readiness_gate&) = delete;
  readiness_gate& operator=(const readiness_gate&) = delete;

  void open() noexcept { set(events_); }
  void close() noexcept { set(0); }

  /// Calls handler(error_code) once, after the next time the socket became ready while open.
  template <class Handler>
  void async_wait(Handler&& handler) {
    gate_.async_wait(boost::asio::posix::descriptor_base::wait_read, std::forward<Handler>(handler));
  }
  /// Ends a pending wait (its handler gets operation_aborted).
  void cancel() noexcept;

 private:
  void set(std::uint32_t events) noexcept;

  int socket_;
  std::uint32_t events_;
  boost::asio::posix::stream_descriptor gate_;
};

}  // namespace mproc::detail
