#include "mproc/detail/arrived_fds.hpp"

#include <unistd.h>

#include <vector>

#include "../fd.hpp"

namespace mproc::detail {

std::size_t arrived_fds::receive(int fd, std::span<std::byte> buf, std::error_code& ec) {
  std::vector<unique_fd> got;
  std::size_t n = recv_packet(fd, buf, got, ec, true);
  for (auto& d : got) fds_.push_back(d.release());
  return n;
}

bool arrived_fds::claim(wire::header& h, std::span<const std::byte>& payload, fd_set_owned& out, std::error_code& ec) {
  std::uint32_t count = wire::take_fd_count(h, payload, ec);
  if (!ec && count > fds_.size()) ec = make_error_code(errc::bad_message);
  if (ec) return false;
  for (std::uint32_t i = 0; i < count; ++i) {
    out.adopt(fds_.front());
    fds_.pop_front();
  }
  return true;
}

void arrived_fds::clear() noexcept {
  for (int fd : fds_) ::close(fd);
  fds_.clear();
}

}  // namespace mproc::detail
