// mproc/detail/arrived_fds.hpp — descriptors received on a framed stream socket, waiting for
// the frame they belong to (see the with_fds flag in mproc/detail/wire.hpp). The kernel
// delivers them with the bytes of the sendmsg that carried them, which start no later than
// their frame; frames claim them in order.
//
// Thread safety: none; one reader at a time. Destructor: closes what no frame claimed.
#pragma once

#include <cstddef>
#include <deque>
#include <span>
#include <system_error>

#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc::detail {

class arrived_fds {
 public:
  arrived_fds() = default;
  arrived_fds(const arrived_fds&) = delete;
  arrived_fds& operator=(const arrived_fds&) = delete;
  ~arrived_fds() { clear(); }

  /// recvmsg on `fd` without blocking, keeping the descriptors that came (CLOEXEC). The bytes
  /// read; 0 with ec clear at EOF; std::errc::resource_unavailable_try_again when none are
  /// there; errc::bad_message when descriptors were cut off (MSG_CTRUNC).
  std::size_t receive(int fd, std::span<std::byte> buf, std::error_code& ec);
  /// For a frame just split off: when its header has with_fds, strips the count from `payload`,
  /// clears the flag and moves that many descriptors to `out`. False (ec bad_message) when the
  /// count is garbage or more than arrived.
  bool claim(wire::header& h, std::span<const std::byte>& payload, fd_set_owned& out, std::error_code& ec);
  void clear() noexcept;

 private:
  std::deque<int> fds_;
};

}  // namespace mproc::detail
