// The fork server: a single-threaded process, forked from the node before any thread exists
// (or exec'd as a fresh image when threads already ran), whose only job is to fork children
// on request and report their pids and exit statuses. Forking from it is safe however many
// threads the node runs, and cheap because its memory stays small.
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <span>

#include "bootstrap.hpp"
#include "node_impl.hpp"

namespace mproc::detail {
namespace {

void send(int sock, const forkserver_message& m, int fd = -1) {
  std::error_code ec;
  std::array<int, 1> fds{fd};
  send_packet(sock, std::as_bytes(std::span{&m, 1}), fd >= 0 ? std::span<const int>{fds} : std::span<const int>{}, ec);
  // A failed send means the node is gone; PR_SET_PDEATHSIG ends us shortly.
}

void reap_children(int sock) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);  // only our own children exist here
    if (pid <= 0) return;
    send(sock, {forkserver_message::exited, 0, pid, status});
  }
}

[[noreturn]] void become_child(int sock, int sigfd, unique_fd channel, pid_t server_pid) {
  ::close(sock);
  ::close(sigfd);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Undo the server's own dispositions: a child starts with the defaults, as after exec.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  die_with_parent(server_pid);
  run_child_from_channel(channel.release());
}

}  // namespace

void run_forkserver(int sock, pid_t) {
  pid_t self = ::getpid();
  // Ctrl-C reaches the whole foreground group; the node decides what happens to children.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  std::array<int, 1> keep{sock};
  close_fds_except(3, keep);  // nothing of the node's (or the user's) leaks into children
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  int sigfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

  for (;;) {
    std::array<pollfd, 2> fds{{{sock, POLLIN, 0}, {sigfd, POLLIN, 0}}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo info;
      while (::read(sigfd, &info, sizeof info) == sizeof info) {
      }
      reap_children(sock);
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    forkserver_message m{};
    std::vector<unique_fd> received;
    std::error_code ec;
    std::size_t n = recv_packet(sock, std::as_writable_bytes(std::span{&m, 1}), received, ec);
    if (ec || n == 0) break;  // the node closed us: it has already dealt with the children
    if (n != sizeof m || m.kind != forkserver_message::spawn || received.size() != 1) continue;
    pid_t pid = ::fork();
    if (pid == 0) become_child(sock, sigfd, std::move(received[0]), self);
    if (pid < 0) {
      send(sock, {forkserver_message::spawned, m.id, 0, errno});
      continue;
    }
    received.clear();  // our copy of the channel: only the child and the node hold it now
    std::error_code pec;
    unique_fd pidfd{pidfd_open(pid, pec)};  // the child is unreaped, so this pid is still it
    send(sock, {forkserver_message::spawned, m.id, pid, 0}, pidfd.get());
  }
  ::_exit(0);
}

}  // namespace mproc::detail
