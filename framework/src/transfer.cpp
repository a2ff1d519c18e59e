#include "mproc/detail/transfer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "fd.hpp"
#include "mproc/error.hpp"

namespace mproc::detail {
namespace {
thread_local transfer_out* current_out = nullptr;
thread_local transfer_in* current_in = nullptr;
}  // namespace

fd_set_owned& fd_set_owned::operator=(fd_set_owned&& o) noexcept {
  if (this != &o) {
    reset();
    fds_ = std::move(o.fds_);
    o.fds_.clear();
  }
  return *this;
}

std::uint32_t fd_set_owned::add_dup(int fd, std::error_code& ec) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) {
    ec = last_error();
    return 0;
  }
  ec.clear();
  fds_.push_back(d);
  return static_cast<std::uint32_t>(fds_.size() - 1);
}

int fd_set_owned::take(std::uint32_t index) noexcept {
  if (index >= fds_.size()) return -1;
  int fd = fds_[index];
  fds_[index] = -1;
  return fd;
}

void fd_set_owned::reset() noexcept {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
  fds_.clear();
}

fd_set_owned fd_set_owned::duplicate(std::error_code& ec) const {
  fd_set_owned copy;
  for (int fd : fds_) {
    copy.add_dup(fd, ec);
    if (ec) return {};
  }
  return copy;
}

transfer_out::transfer_out(purpose p) noexcept : purpose_(p), previous_(current_out) { current_out = this; }
transfer_out::~transfer_out() { current_out = previous_; }
transfer_out* transfer_out::current() noexcept { return current_out; }

std::uint32_t pass_fd(int fd, const char* what) {
  auto* out = transfer_out::current();
  if (out == nullptr)
    throw error(errc::invalid_argument,
                std::string{what} + " travels only as an argument of a process or inside a queue or pipe message");
  std::error_code ec;
  std::uint32_t index = out->fds().add_dup(fd, ec);
  throw_if(ec, std::string{"passing "} + what + " to a process");
  return index;
}

int receive_fd(std::uint32_t index, const char* what) {
  auto* in = transfer_in::current();
  int fd = in != nullptr ? in->fds().take(index) : -1;
  if (fd < 0) throw error(errc::bad_message, std::string{what} + " arrived without its descriptor");
  return fd;
}

transfer_in::transfer_in(fd_set_owned& fds) noexcept : fds_(fds), previous_(current_in) { current_in = this; }
transfer_in::~transfer_in() { current_in = previous_; }
transfer_in* transfer_in::current() noexcept { return current_in; }

}  // namespace mproc::detail
