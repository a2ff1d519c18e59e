#include "mproc/detail/pipe_core.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "../fd.hpp"

namespace mproc::detail {
namespace {

using namespace std::chrono_literals;

/// Blocked calls wake up this often to notice a close() from another thread.
constexpr auto slice = 100ms;

int poll_ms(deadline until) {
  auto now = std::chrono::steady_clock::now();
  if (until <= now) return 0;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now);
  return static_cast<int>(std::min<std::chrono::milliseconds>(left, slice).count());
}

}  // namespace

pipe_core::~pipe_core() {
  if (fd_ >= 0) ::close(fd_);
}

std::pair<std::shared_ptr<pipe_core>, std::shared_ptr<pipe_core>> pipe_core::make_pair(std::error_code& ec) {
  auto [a, b] = make_socketpair(SOCK_STREAM, ec);
  if (ec) return {};
  return {std::make_shared<pipe_core>(a.release()), std::make_shared<pipe_core>(b.release())};
}

int pipe_core::native_handle() const noexcept {
  std::lock_guard lock{fd_mutex_};
  return fd_;
}

void pipe_core::close() noexcept {
  // Callers blocked in another thread hold the send/receive mutex; they notice the flag within
  // one slice and fail with errc::closed. The descriptor is closed once nobody uses it.
  closing_ = true;
  std::lock_guard recv{recv_mutex_};
  std::lock_guard send{send_mutex_};
  std::lock_guard lock{fd_mutex_};
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void pipe_core::send_frame(std::span<const std::byte> frame, const fd_set_owned& fds, std::error_code& ec) {
  std::unique_lock lock{send_mutex_};
  int fd = native_handle();
  if (fd < 0) return void(ec = make_error_code(errc::closed));
  std::span<const int> attach = fds.fds();  // with the first bytes that go, then never again
  while (!frame.empty()) {
    std::size_t n = send_packet(fd, frame, attach, ec, true);
    if (!ec) {
      frame = frame.subspan(n);
      attach = {};
      continue;
    }
    if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block) {
      if (closing_) return void(ec = make_error_code(errc::closed));
      pollfd pfd{fd, POLLOUT, 0};
      ::poll(&pfd, 1, static_cast<int>(slice.count()));
      continue;
    }
    // The peer is gone. A frame cut short cannot be taken back; the stream ends either way.
    if (ec == std::errc::broken_pipe || ec == std::errc::connection_reset) ec = make_error_code(errc::end_of_stream);
    return;
  }
  ec.clear();
}

bool pipe_core::wait_readable(deadline until, std::error_code& ec) {
  for (;;) {
    int fd = native_handle();
    if (fd < 0 || closing_) return ec = make_error_code(errc::closed), false;
    pollfd pfd{fd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, poll_ms(until));
    if (rc > 0) return ec.clear(), true;
    if (rc < 0 && errno != EINTR) return ec = last_error(), false;
    if (std::chrono::steady_clock::now() >= until) return ec = make_error_code(errc::empty), false;
  }
}

bool pipe_core::receive(message& m, deadline until, std::error_code& ec) {
  std::lock_guard lock{recv_mutex_};
  for (;;) {
    wire::header h;
    std::span<const std::byte> payload;
    if (splitter_.next(h, payload, ec)) {
      fd_set_owned fds;
      if (!arrived_.claim(h, payload, fds, ec)) return false;
      wire::record_cursor c{payload};
      std::span<const std::byte> r;
      // Exactly one record per message (with all the frame's descriptors).
      if (static_cast<wire::kind>(h.kind) != wire::kind::data || wire::record_cursor::count(payload, ec, fds.size()) != 1 ||
          !c.next(r, ec)) {
        ec = make_error_code(errc::bad_message);
        return false;
      }
      m.type_id = h.type_id;
      m.record.assign(r.begin(), r.end());
      m.out_of_line = c.out_of_line();
      m.fds = std::move(fds);
      return true;
    }
    if (ec) return false;  // garbage: this stream cannot be trusted any more
    if (eof_) {
      ec = make_error_code(splitter_.buffered() == 0 ? errc::end_of_stream : errc::bad_message);
      return false;
    }
    if (!wait_readable(until, ec)) return false;
    int fd = native_handle();
    if (fd < 0) return ec = make_error_code(errc::closed), false;
    auto room = splitter_.prepare();
    std::size_t n = arrived_.receive(fd, room, ec);
    if (!ec && n > 0) splitter_.commit(n);
    else if (!ec || ec == std::errc::connection_reset) eof_ = true;
    else if (ec != std::errc::resource_unavailable_try_again && ec != std::errc::interrupted) return false;
    ec.clear();
  }
}

bool pipe_core::poll(deadline until, std::error_code& ec) {
  std::lock_guard lock{recv_mutex_};
  if (splitter_.buffered() > 0 || eof_) return ec.clear(), true;
  if (wait_readable(until, ec)) return true;
  if (ec == errc::empty) ec.clear();
  return false;
}

}  // namespace mproc::detail
