#include "runtime.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstring>

#include "../hold_across_fork.hpp"
#include "../node_impl.hpp"
#include "mproc/node.hpp"
#include "queue_client.hpp"
#include "queue_owner.hpp"

namespace mproc::detail {
namespace asio = boost::asio;
namespace {

using namespace std::chrono_literals;

constexpr auto handshake_limit = 10s;

// The runtime of this process. After fork() the child starts over (see after_fork_in_child).
struct runtime_slot {
  std::mutex mutex;
  mailbox_runtime* runtime = nullptr;
};
// Its mutex is held by the forking thread across every fork (hold_across_fork.hpp), so a child
// never inherits it from a thread it does not have. Taking it for a fork cannot deadlock: its
// holders (instance(), shutdown_mailboxes()) only make a runtime or retire one. Making one
// constructs an io_context (a few descriptors, no thread: the I/O thread starts later, under the
// runtime's own mutex, and only then registers with the fork gate); retiring one appends to a
// vector.
runtime_slot* slot = new_held_across_fork(&runtime_slot::mutex);
std::atomic<std::uint64_t> generation{0};

// Runtimes of nodes that ended: kept reachable (handles may outlive their node and still
// point into them), never used again.
std::vector<mailbox_runtime*>* retired = new std::vector<mailbox_runtime*>;  // NOLINT: see above

/// The slot's runtime is retired (kept reachable, never used again); the next instance() makes
/// a new one. Call with the slot's mutex held, or where no other thread exists.
void retire_runtime(runtime_slot& s) {
  if (s.runtime != nullptr) retired->push_back(s.runtime);
  s.runtime = nullptr;
}

void after_fork_in_child() {
  // Only this thread exists now, and the slot's mutex is free or ours (the fork gate's).
  retire_runtime(*slot);
  generation.fetch_add(1);
}

[[maybe_unused]] const int atfork_registered = ::pthread_atfork(nullptr, nullptr, &after_fork_in_child);

sockaddr_un address_of(const std::string& path, std::error_code& ec) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ec = std::make_error_code(std::errc::filename_too_long);
    return addr;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ec.clear();
  return addr;
}

template <class Message>
void write_message(int fd, wire::kind k, const Message& m, std::error_code& ec) {
  std::vector<std::byte> frame;
  wire::put_frame(frame, k, 0, to_bytes(m));
  write_all(fd, frame.data(), frame.size(), ec);
}

/// Reads one whole frame from a blocking socket (the handshake, before the I/O thread), and
/// the descriptors that came with it.
bool read_one_frame(int fd, wire::header& h, std::vector<std::byte>& payload, std::vector<unique_fd>& fds,
                    std::error_code& ec) {
  if (!read_all_with_fds(fd, &h, sizeof h, fds, ec)) {
    if (!ec) ec = make_error_code(errc::node_closed);  // the owner closed on us
    return false;
  }
  if ((ec = wire::check(h, 1 << 20))) return false;
  payload.resize(h.length);
  if (h.length > 0 && !read_all(fd, payload.data(), payload.size(), ec)) {
    if (!ec) ec = make_error_code(errc::bad_message);
    return false;
  }
  return true;
}

}  // namespace

std::uint64_t fork_generation() noexcept { return generation.load(std::memory_order_relaxed); }

bool peer_is_same_user(int fd) noexcept {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == ::geteuid();
}

mailbox_runtime& mailbox_runtime::instance() {
  runtime_slot* s = slot;
  std::lock_guard lock{s->mutex};
  if (s->runtime == nullptr) s->runtime = new mailbox_runtime;  // NOLINT: lives as long as the process
  return *s->runtime;
}

void mailbox_runtime::start_thread() {
  if (running_) return;
  running_ = true;
  thread_ = std::thread{[this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  }};
  fork_gate_.emplace(io_, thread_.get_id());  // parked across every fork() (fork_gate.hpp)
}

asio::io_context& mailbox_runtime::io() {
  std::lock_guard lock{mutex_};
  start_thread();
  return io_;
}

const std::string& mailbox_runtime::listen(std::error_code& ec) {
  ec.clear();
  if (!path_.empty()) return path_;
  node* n = node::current_or_null();
  if (n == nullptr) {
    ec = make_error_code(errc::no_node);
    return path_;
  }
  auto dir = n->impl().runtime_dir(ec);
  if (ec) return path_;
  std::string path = (dir / "mbox.sock").string();
  unique_fd fd = listen_private(path, ec);
  if (ec) return path_;
  start_thread();
  listener_.emplace(io_, fd.release());
  path_ = path;
  asio::post(io_, [this] { accept_next(); });
  return path_;
}

void mailbox_runtime::accept_next() {
  listener_->async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;
    for (;;) {
      unique_fd fd{::accept4(listener_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC)};
      if (!fd) break;
      on_accepted(std::move(fd));
    }
    accept_next();
  });
}

void mailbox_runtime::on_accepted(unique_fd fd) {
  if (!peer_is_same_user(fd.get())) {
    std::error_code ignored;
    write_message(fd.get(), wire::kind::refused,
                  wire::status_message{static_cast<std::int32_t>(errc::access_denied), "peer of another user"}, ignored);
    return;  // closed by unique_fd
  }
  // The first frame must be a hello naming one of our queues; then the session takes over.
  struct binding {
    std::shared_ptr<queue_owner> queue;
    queue_owner::session_ptr session;
  };
  auto b = std::make_shared<binding>();
  auto conn = std::make_shared<connection>(io_, std::move(fd));
  std::weak_ptr<connection> weak_conn = conn;
  {
    std::lock_guard lock{mutex_};
    std::erase_if(accepted_, [](const auto& w) { return w.expired(); });
    accepted_.push_back(conn);
  }
  conn->start(
      [this, b, weak_conn](const wire::header& h, std::span<const std::byte> payload, fd_set_owned& fds) {
        auto c = weak_conn.lock();
        if (!c) return;
        if (b->queue) return b->queue->on_frame(b->session, h, payload, fds);
        auto refuse = [&](errc code, std::string text) {
          c->send_message(wire::kind::refused, wire::status_message{static_cast<std::int32_t>(code), std::move(text)});
          c->close();
        };
        wire::hello_message hello;
        try {
          if (static_cast<wire::kind>(h.kind) != wire::kind::hello) return refuse(errc::bad_message, "expected hello");
          hello = from_bytes<wire::hello_message>(payload.data(), payload.size());
        } catch (const error&) {
          return refuse(errc::bad_message, "undecodable hello");
        }
        std::shared_ptr<queue_owner> q;
        {
          std::lock_guard lock{mutex_};
          if (auto it = owned_.find(hello.queue_id); it != owned_.end()) q = it->second;
        }
        if (!q) return refuse(errc::closed, "no such queue");
        if (hello.type_id != q->token().type_id)
          return refuse(errc::wrong_type, "queue of " + q->type_name() + " opened as queue of " + hello.type_name);
        b->queue = q;
        b->session = q->attach(c);
      },
      [b](std::error_code) {
        if (b->queue) b->queue->on_close(b->session);
      });
}

std::shared_ptr<queue_core> mailbox_runtime::create_queue(std::uint64_t type_id, const std::type_info& type,
                                                          std::size_t maxsize, std::error_code& ec) {
  std::lock_guard lock{mutex_};
  if (stopped_) return ec = make_error_code(errc::node_closed), nullptr;
  const std::string& path = listen(ec);
  if (ec) return nullptr;
  queue_token token{path, ++next_queue_id_, type_id};
  auto q = std::make_shared<queue_owner>(token, wire::type_name(type), maxsize);
  owned_.emplace(token.queue_id, q);
  return q;
}

unique_fd listen_private(const std::string& path, std::error_code& ec) {
  auto addr = address_of(path, ec);
  if (ec) return {};
  unique_fd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (!fd) return ec = last_error(), unique_fd{};
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||  // NOLINT: sockaddr API
      ::chmod(path.c_str(), 0600) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
    ec = last_error();
    return {};
  }
  return fd;
}

unique_fd mailbox_runtime::connect_to(const std::string& path, std::error_code& ec) {
  auto addr = address_of(path, ec);
  if (ec) return {};
  unique_fd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd) return ec = last_error(), unique_fd{};
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);  // NOLINT: sockaddr API
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    // No listener: its process (the queue's owner) has ended.
    ec = errno == ENOENT || errno == ECONNREFUSED ? make_error_code(errc::node_closed) : last_error();
    return {};
  }
  if (!peer_is_same_user(fd.get())) return ec = make_error_code(errc::access_denied), unique_fd{};
  ec.clear();
  return fd;
}

std::shared_ptr<queue_core> mailbox_runtime::open_queue(const queue_token& token, const std::type_info& type,
                                                        std::error_code& ec) {
  if (token.path.starts_with(remote_queue_prefix)) return open_remote_queue(token, type, ec);
  auto key = std::make_pair(token.path, token.queue_id);
  {
    std::lock_guard lock{mutex_};
    if (stopped_) return ec = make_error_code(errc::node_closed), nullptr;
    if (!path_.empty() && token.path == path_) {  // one of ours
      auto it = owned_.find(token.queue_id);
      if (it == owned_.end()) return ec = make_error_code(errc::closed), nullptr;
      if (it->second->token().type_id != token.type_id) return ec = make_error_code(errc::wrong_type), nullptr;
      ec.clear();
      return it->second;
    }
    if (auto it = clients_.find(key); it != clients_.end()) {
      if (auto c = it->second.lock()) {
        ec.clear();
        return c;
      }
    }
  }
  // Connect and shake hands without the lock: the owner may at this moment be opening one of
  // our queues, and our I/O thread needs the lock to answer it.
  auto client = connect_client(token, type, ec);
  if (ec) return nullptr;
  std::lock_guard lock{mutex_};
  if (stopped_) return ec = make_error_code(errc::node_closed), nullptr;
  if (auto it = clients_.find(key); it != clients_.end()) {
    if (auto c = it->second.lock()) return c;  // another thread was faster; ours closes
  }
  clients_[key] = client;
  return client;
}

std::shared_ptr<queue_client> mailbox_runtime::connect_client(const queue_token& token, const std::type_info& type,
                                                              std::error_code& ec) {
  unique_fd fd = connect_to(token.path, ec);
  if (ec) return nullptr;
  // Handshake on the blocking socket, bounded in time, before the I/O thread takes over.
  timeval tv{static_cast<time_t>(handshake_limit.count()), 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  write_message(fd.get(), wire::kind::hello,
                wire::hello_message{token.queue_id, token.type_id, wire::type_name(type)},
                ec);
  if (ec) return nullptr;
  wire::header h;
  std::vector<std::byte> payload;
  std::vector<unique_fd> fds;
  if (!read_one_frame(fd.get(), h, payload, fds, ec)) return nullptr;
  try {
    if (static_cast<wire::kind>(h.kind) == wire::kind::refused) {
      auto s = from_bytes<wire::status_message>(payload.data(), payload.size());
      ec = make_error_code(static_cast<errc>(s.code));
      return nullptr;
    }
    if (static_cast<wire::kind>(h.kind) != wire::kind::welcome) return ec = make_error_code(errc::bad_message), nullptr;
    auto welcome = from_bytes<wire::welcome_message>(payload.data(), payload.size());
    timeval none{0, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    auto conn = std::make_shared<connection>(io(), std::move(fd));
    std::shared_ptr<shared_counter> consumed;
    if (fds.size() == 1) consumed = shared_counter::map(std::move(fds[0]), ec);  // none: no crash recovery
    auto client = std::make_shared<queue_client>(token, conn, welcome, std::move(consumed));
    client->start();
    ec.clear();
    return client;
  } catch (const error& e) {
    ec = e.code();
    return nullptr;
  }
}

queue_core* mailbox_runtime::reopen(const queue_token& token, const std::type_info& type, bool writer,
                                    std::error_code& ec) {
  auto key = std::make_pair(token.path, token.queue_id);
  std::shared_ptr<queue_core> core;
  {
    std::lock_guard lock{mutex_};
    if (auto it = reopened_.find(key); it != reopened_.end()) core = it->second;
  }
  if (!core) {
    core = open_queue(token, type, ec);
    if (ec) return nullptr;
    std::lock_guard lock{mutex_};
    core = reopened_.emplace(key, std::move(core)).first->second;
  }
  ec.clear();
  if (writer) {
    std::lock_guard lock{mutex_};
    if (!reopened_presences_.count(key)) reopened_presences_.emplace(key, core->writer_presence());
  }
  return core.get();
}

std::vector<std::shared_ptr<queue_client>> mailbox_runtime::live_clients_locked() const {
  std::vector<std::shared_ptr<queue_client>> clients;
  for (const auto& [key, weak] : clients_)
    if (auto c = weak.lock()) clients.push_back(std::move(c));
  return clients;
}

void mailbox_runtime::flush_all(deadline until) noexcept {
  std::vector<std::shared_ptr<queue_client>> clients;
  {
    std::lock_guard lock{mutex_};
    clients = live_clients_locked();
  }
  for (auto& c : clients) {
    if (!c->flush(until))
      std::fprintf(stderr, "mproc: pid %d: puts to queue %llu could not be delivered before exit\n", ::getpid(),
                   static_cast<unsigned long long>(c->token().queue_id));
  }
}

void mailbox_runtime::shutdown() noexcept {
  std::map<std::uint64_t, std::shared_ptr<queue_owner>> owned;
  std::vector<std::weak_ptr<connection>> accepted;
  std::vector<std::shared_ptr<queue_client>> clients;
  flush_all(std::chrono::steady_clock::now() + 10s);
  {
    std::lock_guard lock{mutex_};
    if (stopped_) return;
    stopped_ = true;
    owned.swap(owned_);
    accepted.swap(accepted_);
    clients = live_clients_locked();
    reopened_.clear();
    reopened_presences_.clear();
  }
  // Every connection ends (handles still around then report errc::node_closed).
  for (auto& c : accepted)
    if (auto conn = c.lock()) conn->close();
  for (auto& c : clients) c->disconnect();
  if (running_) {
    fork_gate_.reset();
    // Closes were posted before this, so they run first.
    asio::post(io_, [this] {
      if (listener_) listener_->close();
      io_.stop();
    });
    thread_.join();
  }
  if (!path_.empty()) ::unlink(path_.c_str());
}

// ---- the free functions of queue_core.hpp ------------------------------------------------

std::shared_ptr<queue_core> create_queue(std::uint64_t type_id, const std::type_info& type, std::size_t maxsize,
                                         std::error_code& ec) {
  return mailbox_runtime::instance().create_queue(type_id, type, maxsize, ec);
}

std::shared_ptr<queue_core> open_queue(const queue_token& token, const std::type_info& type, std::error_code& ec) {
  return mailbox_runtime::instance().open_queue(token, type, ec);
}

void shutdown_mailboxes() noexcept {
  mailbox_runtime::instance().shutdown();
  // A later node in this process starts with a fresh runtime. The stopped one is kept (not
  // freed): handles that outlive their node still point into it and report node_closed.
  runtime_slot* s = slot;
  std::lock_guard lock{s->mutex};
  retire_runtime(*s);
}

}  // namespace mproc::detail
