// Internal: owned file descriptors and the few syscalls mproc wraps around them.
// Every fd mproc creates is CLOEXEC from birth (Rule 6 in DESIGN.md).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace mproc::detail {

/// Owns one fd; closes it on destruction. Move-only. Not thread-safe.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

/// A connected AF_UNIX pair, CLOEXEC. type: SOCK_STREAM or SOCK_SEQPACKET.
std::pair<unique_fd, unique_fd> make_socketpair(int type, std::error_code& ec) noexcept;

/// Writes/reads exactly n bytes, retrying on EINTR and partial transfers.
void write_all(int fd, const void* p, std::size_t n, std::error_code& ec) noexcept;
/// Returns false with ec clear on a clean EOF at byte 0; errc::bad_message on EOF mid-way.
bool read_all(int fd, void* p, std::size_t n, std::error_code& ec) noexcept;

/// One datagram on a SOCK_SEQPACKET socket (or one write on a stream socket), with up to 253 fds
/// attached (SCM_RIGHTS; more is errc::message_too_large). Returns the bytes sent (a stream
/// socket may take fewer); with `nonblocking`, a full socket gives
/// std::errc::resource_unavailable_try_again.
std::size_t send_packet(int fd, std::span<const std::byte> data, std::span<const int> fds, std::error_code& ec,
                        bool nonblocking = false) noexcept;
/// Receives one datagram; received fds are owned by `fds` and marked CLOEXEC. Returns the
/// datagram size; 0 with ec clear means EOF. With `nonblocking`, an empty socket gives
/// std::errc::resource_unavailable_try_again.
std::size_t recv_packet(int fd, std::span<std::byte> buf, std::vector<unique_fd>& fds, std::error_code& ec,
                        bool nonblocking = false) noexcept;

/// read_all on a stream socket that also takes the descriptors sent with the first bytes
/// (SCM_RIGHTS; appended to `fds`, CLOEXEC). Same results as read_all.
bool read_all_with_fds(int fd, void* p, std::size_t n, std::vector<unique_fd>& fds, std::error_code& ec) noexcept;

int pidfd_open(pid_t pid, std::error_code& ec) noexcept;
/// pidfd_send_signal(2); returns 0 or -1 with errno.
int pidfd_signal(int pidfd, int sig) noexcept;
/// True when the process behind the pidfd has exited (a zombie counts).
bool pidfd_exited(int pidfd) noexcept;
/// Reaps exactly the child behind `pidfd` (waitid(P_PIDFD), never anybody else's child).
/// Returns its exit code in Python's convention (n, or -signal) once it has exited; nullopt
/// while it runs (only with `block` false), or with ec set when the wait failed (ECHILD:
/// someone else's waitpid(-1) took the status).
std::optional<int> reap_pidfd(int pidfd, bool block, std::error_code& ec) noexcept;

/// Number of threads of the calling process (from /proc/self/status).
int thread_count() noexcept;

/// Closes every fd >= `from` except those in `keep` (used in fresh fork servers and children).
void close_fds_except(int from, std::span<const int> keep) noexcept;

/// Converts a waitpid status to Python's exitcode convention: n, or -signal.
int exitcode_from_status(int status) noexcept;

inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

}  // namespace mproc::detail
