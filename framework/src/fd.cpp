#include "fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "mproc/error.hpp"

namespace mproc::detail {

void unique_fd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::pair<unique_fd, unique_fd> make_socketpair(int type, std::error_code& ec) noexcept {
  int sv[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) {
    ec = last_error();
    return {};
  }
  ec.clear();
  return {unique_fd{sv[0]}, unique_fd{sv[1]}};
}

void write_all(int fd, const void* p, std::size_t n, std::error_code& ec) noexcept {
  auto* b = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = ::write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      return;
    }
    b += w;
    n -= static_cast<std::size_t>(w);
  }
  ec.clear();
}

bool read_all(int fd, void* p, std::size_t n, std::error_code& ec) noexcept {
  auto* b = static_cast<char*>(p);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, b + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      return false;
    }
    if (r == 0) {
      if (got == 0) ec.clear();
      else ec = make_error_code(errc::bad_message);
      return false;
    }
    got += static_cast<std::size_t>(r);
  }
  ec.clear();
  return true;
}

namespace {
constexpr std::size_t max_fds = 253;  // the kernel's SCM_MAX_FD
}

std::size_t send_packet(int fd, std::span<const std::byte> data, std::span<const int> fds, std::error_code& ec,
                        bool nonblocking) noexcept {
  if (fds.size() > max_fds) {  // never drop descriptors silently
    ec = make_error_code(errc::message_too_large);
    return 0;
  }
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds)];
  if (!fds.empty()) {
    std::size_t n = fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
  }
  for (;;) {
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
    if (n >= 0) {
      ec.clear();
      return static_cast<std::size_t>(n);
    }
    if (errno != EINTR) {
      ec = last_error();
      return 0;
    }
  }
}

std::size_t recv_packet(int fd, std::span<std::byte> buf, std::vector<unique_fd>& fds, std::error_code& ec,
                        bool nonblocking) noexcept {
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    ec = last_error();
    return 0;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(received);
      }
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    ec = make_error_code(errc::bad_message);
    return 0;
  }
  ec.clear();
  return static_cast<std::size_t>(n);
}

bool read_all_with_fds(int fd, void* p, std::size_t n, std::vector<unique_fd>& fds, std::error_code& ec) noexcept {
  // recvmsg for the first bytes, where descriptors travel; the rest plainly.
  std::size_t got = recv_packet(fd, {static_cast<std::byte*>(p), n}, fds, ec);
  if (ec) return false;
  if (got == 0) return false;  // clean EOF, ec clear
  if (got < n && !read_all(fd, static_cast<std::byte*>(p) + got, n - got, ec)) {
    if (!ec) ec = make_error_code(errc::bad_message);  // EOF mid-way
    return false;
  }
  return true;
}

int pidfd_open(pid_t pid, std::error_code& ec) noexcept {
  // Raw syscalls: glibc 2.36's <sys/pidfd.h> lacks extern "C" and cannot be linked from C++.
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // pidfds are always CLOEXEC
  if (fd < 0) ec = last_error();
  else ec.clear();
  return fd;
}

int pidfd_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

bool pidfd_exited(int pidfd) noexcept {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

std::optional<int> reap_pidfd(int pidfd, bool block, std::error_code& ec) noexcept {
  constexpr int p_pidfd = 3;  // P_PIDFD (Linux 5.4); linux/wait.h clashes with glibc's sys/wait.h
  siginfo_t info{};
  for (;;) {
    if (::waitid(static_cast<idtype_t>(p_pidfd), static_cast<id_t>(pidfd), &info, WEXITED | (block ? 0 : WNOHANG)) == 0)
      break;
    if (errno == EINTR) continue;
    ec = last_error();
    return std::nullopt;
  }
  ec.clear();
  if (info.si_pid == 0) return std::nullopt;  // WNOHANG and still running
  return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

int thread_count() noexcept {
  FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "Threads: %d", &n) == 1) break;
  }
  std::fclose(f);
  return n;
}

void close_fds_except(int from, std::span<const int> keep) noexcept {
  std::vector<int> sorted(keep.begin(), keep.end());
  std::sort(sorted.begin(), sorted.end());
  int next = from;
  for (int k : sorted) {
    if (k < next) continue;
    if (k > next) ::syscall(SYS_close_range, next, k - 1, 0);
    next = k + 1;
  }
  ::syscall(SYS_close_range, next, ~0U, 0);
}

int exitcode_from_status(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return 255;
}

}  // namespace mproc::detail
