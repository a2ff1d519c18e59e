#include "mproc/wait.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <mutex>

#include "fd.hpp"
#include "process_state.hpp"

namespace mproc {
namespace {

/// An owned fd that becomes readable when the process exits (a dup of its pidfd; a readable
/// eventfd when it has exited already).
int process_exit_fd(process& p, std::error_code& ec) {
  auto& s = detail::process_access::state(p);
  std::lock_guard lock{s->mutex};
  if (!s->started) return ec = make_error_code(errc::not_started), -1;
  if (s->exitcode || !s->pidfd) {
    int fd = detail::always_ready_fd(ec);
    return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  }
  int fd = ::fcntl(s->pidfd.get(), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) ec = detail::last_error();
  else ec.clear();
  return fd;
}

}  // namespace

int detail::always_ready_fd(std::error_code& ec) {
  static const int fd = [] {
    int e = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);  // never read: readable for ever
    return e;
  }();
  if (fd < 0) ec = make_error_code(std::errc::too_many_files_open);
  else ec.clear();
  return fd;
}

waitable::waitable(process& p) {
  auto owned = std::make_shared<int>(-1);
  watch_ = [&p, owned](std::error_code& ec) {
    *owned = process_exit_fd(p, ec);
    return *owned;
  };
  unwatch_ = [owned] {
    if (*owned >= 0) ::close(*owned);
    *owned = -1;
  };
}

waitable::~waitable() = default;

std::vector<std::size_t> wait(std::span<const waitable> objects, std::chrono::steady_clock::duration timeout,
                              std::error_code& ec) {
  std::vector<pollfd> fds;
  fds.reserve(objects.size());
  std::size_t watched = 0;
  auto unwatch_all = [&] {
    for (std::size_t i = 0; i < watched; ++i)
      if (objects[i].unwatch_) objects[i].unwatch_();
  };
  ec.clear();
  for (const auto& w : objects) {
    int fd = w.watch_(ec);
    ++watched;
    if (ec || fd < 0) {
      if (!ec) ec = make_error_code(errc::invalid_argument);
      unwatch_all();
      return {};
    }
    fds.push_back({fd, POLLIN, 0});
  }
  auto until = detail::deadline_after(timeout);
  std::vector<std::size_t> ready;
  for (;;) {
    int rc = ::poll(fds.data(), fds.size(), detail::poll_timeout_ms(until));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) ec = detail::last_error();
    for (std::size_t i = 0; rc > 0 && i < fds.size(); ++i)
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) ready.push_back(i);
    break;
  }
  unwatch_all();
  return ready;
}

std::vector<std::size_t> wait(std::span<const waitable> objects, std::chrono::steady_clock::duration timeout) {
  std::error_code ec;
  auto ready = wait(objects, timeout, ec);
  throw_if(ec, "mproc::wait");
  return ready;
}

}  // namespace mproc
