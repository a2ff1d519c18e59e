// Internal: the mailbox machinery of one process.
//
// One I/O thread (Boost.Asio), started on first use, drives every mailbox connection of the
// process. The process's queues are served on one listening socket, <runtime dir>/mbox.sock
// (mode 0600 in the node's 0700 directory); a connecting peer of another user is refused
// (SO_PEERCRED), and a client refuses a listener of another user.
//
// After fork() the child gets a fresh runtime (fork_generation changes): the parent's thread
// does not exist there and its locks may be held, so nothing of the old one is touched again.
// Across a fork the I/O thread is parked (fork_gate.hpp).
//
// Thread safety: every member from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../fd.hpp"
#include "../fork_gate.hpp"
#include "connection.hpp"
#include "mproc/detail/queue_core.hpp"

namespace mproc::detail {

class queue_owner;
class queue_client;

class mailbox_runtime {
 public:
  /// The runtime of the calling process (a new one in a forked child).
  static mailbox_runtime& instance();

  boost::asio::io_context& io();
  std::shared_ptr<queue_core> create_queue(std::uint64_t type_id, const std::type_info& type, std::size_t maxsize,
                                           std::error_code& ec);
  std::shared_ptr<queue_core> open_queue(const queue_token& token, const std::type_info& type, std::error_code& ec);
  /// open_queue for a handle copied by fork(): the core is kept for the life of the process,
  /// since such handles cannot hold it themselves.
  /// A writer handle's reopened core also holds a writer presence here, for the same reason.
  queue_core* reopen(const queue_token& token, const std::type_info& type, bool writer, std::error_code& ec);
  void flush_all(deadline until) noexcept;
  /// Ends every connection and stops the I/O thread (node shutdown).
  void shutdown() noexcept;

  /// Connects to a mailbox listener, checking that it belongs to our user.
  static unique_fd connect_to(const std::string& path, std::error_code& ec);

 private:
  mailbox_runtime() = default;
  const std::string& listen(std::error_code& ec);  // lazily; returns the socket path
  void accept_next();
  void on_accepted(unique_fd fd);
  void start_thread();  // with mutex_ held
  std::vector<std::shared_ptr<queue_client>> live_clients_locked() const;  // with mutex_ held
  std::shared_ptr<queue_client> connect_client(const queue_token& token, const std::type_info& type,
                                               std::error_code& ec);

  std::mutex mutex_;
  boost::asio::io_context io_;
  std::thread thread_;
  std::optional<fork_gate_registration> fork_gate_;
  bool running_ = false;
  bool stopped_ = false;
  std::string path_;
  std::optional<boost::asio::posix::stream_descriptor> listener_;
  std::uint64_t next_queue_id_ = 0;
  std::map<std::uint64_t, std::shared_ptr<queue_owner>> owned_;
  std::map<std::pair<std::string, std::uint64_t>, std::weak_ptr<queue_client>> clients_;
  std::vector<std::weak_ptr<connection>> accepted_;
  std::map<std::pair<std::string, std::uint64_t>, std::shared_ptr<queue_core>> reopened_;
  std::map<std::pair<std::string, std::uint64_t>, std::shared_ptr<void>> reopened_presences_;
};

/// A non-blocking listening socket at `path` (replacing a stale one), mode 0600.
unique_fd listen_private(const std::string& path, std::error_code& ec);

/// True when the peer of a connected Unix socket runs as our effective user.
bool peer_is_same_user(int fd) noexcept;

}  // namespace mproc::detail
