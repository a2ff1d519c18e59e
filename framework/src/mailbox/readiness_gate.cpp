#include "readiness_gate.hpp"

#include <sys/epoll.h>

#include <cerrno>

#include "../fd.hpp"

namespace mproc::detail {

readiness_gate::readiness_gate(boost::asio::io_context& io, int socket, std::uint32_t events, bool open,
                               std::error_code& ec)
    : socket_(socket), events_(events), gate_(io) {
  unique_fd epoll{::epoll_create1(EPOLL_CLOEXEC)};
  if (!epoll) {
    ec = std::error_code{errno, std::system_category()};
    return;
  }
  // Level-triggered inside the gate: nobody ever takes the gate's events (epoll_wait on it), the
  // gate is only readable or not; each new readiness of the socket wakes whoever watches the gate.
  epoll_event ev{};
  ev.events = open ? events : 0;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, socket, &ev) != 0) {
    ec = std::error_code{errno, std::system_category()};
    return;
  }
  boost::system::error_code bec;
  gate_.assign(epoll.release(), bec);
  if (bec) ec = std::error_code{bec.value(), std::system_category()};
}

void readiness_gate::set(std::uint32_t events) noexcept {
  epoll_event ev{};
  ev.events = events;
  // Fails only when the gate or the socket is closed already: then nothing is watched anyway.
  (void)::epoll_ctl(gate_.native_handle(), EPOLL_CTL_MOD, socket_, &ev);
}

void readiness_gate::cancel() noexcept {
  boost::system::error_code ignored;
  gate_.cancel(ignored);
}

}  // namespace mproc::detail
