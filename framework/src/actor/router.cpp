#include "router.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include "../node_impl.hpp"
#include "mproc/node.hpp"
#include <caf/actor_registry.hpp>
#include <caf/local_actor.hpp>
#include <caf/make_actor.hpp>
#include <caf/sec.hpp>
#include <csignal>
#include <cstring>
#include <iostream>

#include "../mailbox/runtime.hpp"
#include "mproc/actor_error.hpp"
#include "mproc/serialization.hpp"
#include "proxy.hpp"

namespace mproc::detail {
namespace {

std::span<const std::byte> as_bytes(const std::vector<char>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};  // NOLINT: byte view of a char buffer
}

struct monitor_frame {
  std::uint32_t watcher = 0;
  std::uint64_t actor = 0;
};
template <class F>
void inspect(F& f, monitor_frame& x) {
  f(x.watcher, x.actor);
}

/// Why a host ended, as its watchers read it.
caf::error host_reason(std::uint32_t pid, const std::shared_ptr<process_state>& proc) {
  std::optional<int> code;
  if (proc) {
    std::unique_lock lock{proc->mutex};
    // EOF on the connection comes a moment before the zombie: wait a little for the status.
    proc->changed.wait_for(lock, std::chrono::seconds(1), [&] { return proc->exitcode.has_value(); });
    code = proc->exitcode;
  }
  std::string text = "process " + std::to_string(pid);
  if (!code) text += " ended";
  else if (*code < 0) text += " was killed by signal " + std::to_string(-*code) + " (" + ::strsignal(-*code) + ")";
  else text += " exited with code " + std::to_string(*code);
  return make_caf_error(errc::host_lost, text);
}

/// Whether `sender` is a blocking actor (a scoped_actor, mproc::request) that sends the request
/// `mid` from its own thread, which then, almost always, waits for the answer. Not an actor that
/// forwards another's request (ctx is the forwarder's then).
bool waits_on_this_thread(const caf::strong_actor_ptr& sender, caf::message_id mid, caf::execution_unit* ctx) {
  if (!mid.is_request() || !sender || ctx == nullptr) return false;
  auto* actor = sender->get();
  return actor->getf(caf::abstract_actor::is_blocking_flag) && static_cast<caf::local_actor*>(actor)->context() == ctx;
}

}  // namespace

std::uint32_t pid_of(const caf::node_id& nid) noexcept {
  if (!nid || nid->implementation_id() != caf::node_id::default_data::class_id) return 0;
  return static_cast<const caf::node_id::default_data&>(*nid).process_id();
}

actor_router::actor_router(caf::actor_system& sys, std::string registrations)
    : sys_(sys), proxies_(sys, *this), registrations_(std::move(registrations)),
      self_pid_(static_cast<std::uint32_t>(::getpid())), io_context_(&sys),
      runner_(sys, mailbox_runtime::instance().io()) {
  io_context_.proxy_registry_ptr(&proxies_);
}

actor_router::~actor_router() { shutdown(); }

caf::strong_actor_ptr actor_router::make_proxy(caf::node_id nid, caf::actor_id aid) {
  auto pid = pid_of(nid);
  // CAF 0.17 asks for a proxy of a null handle too (no node, id 0): it stays null.
  if (pid == 0 || aid == caf::invalid_actor_id) return nullptr;
  {
    std::lock_guard lock{mutex_};
    nodes_.emplace(pid, nid);
  }
  caf::actor_config cfg;
  auto proxy = caf::make_actor<actor_proxy_impl, caf::strong_actor_ptr>(aid, nid, &sys_, cfg, weak_from_this());
  // Ask the actor's process to tell us when it ends; without a route the proxy learns it from
  // the process's down notice or dies at shutdown.
  if (auto conn = route(pid)) conn->send(wire::kind::actor_monitor, pid, to_bytes(monitor_frame{self_pid_, aid}));
  return proxy;
}

std::shared_ptr<connection> actor_router::route(std::uint32_t pid) {
  std::lock_guard lock{mutex_};
  if (stopped_) return nullptr;
  if (auto it = downlinks_.find(pid); it != downlinks_.end()) return it->second.conn;
  return uplink_ ? uplink_->conn : nullptr;
}

void actor_router::bounce(const caf::strong_actor_ptr& sender, caf::message_id mid, caf::error reason) {
  if (mid.is_request() && sender) {
    sender->enqueue(nullptr, mid.response_id(), caf::make_message(std::move(reason)), nullptr);
    return;
  }
  // A one-way message has nobody waiting for an answer, and an error message would end its
  // sender (CAF's default error handler): it is dropped, as CAF drops one for a dead local actor;
  // watchers learn of ends through monitors. A type that is not registered is a programming
  // error, so that one is said on stderr.
  if (to_error_code(reason) == errc::wrong_type) std::cerr << "mproc: dropped a message: " << describe(reason) << '\n';
}

void actor_router::forward(std::uint32_t pid, caf::actor_id aid, caf::strong_actor_ptr sender, caf::message_id mid,
                           const caf::mailbox_element::forwarding_stack& stages, caf::message content,
                           caf::execution_unit* ctx) {
  // An unregistered type would arrive as CAF's silent empty message: refuse it here.
  for (std::size_t i = 0; i < content.size(); ++i) {
    auto type = content.type(i);
    if (type.first != 0) continue;  // CAF's builtin types
    const auto& name = sys_.types().portable_name(type);
    if (&name == &sys_.types().default_type_name() || name.empty()) {
      return refuse(pid, aid, sender, mid,
                    make_caf_error(errc::wrong_type, std::string{"message type "} + (type.second ? type.second->name() : "?") +
                                                         " is not registered (MPROC_ACTOR_MESSAGE)"));
    }
  }
  auto conn = route(pid);
  if (!conn) return refuse(pid, aid, sender, mid, make_caf_error(errc::host_lost, "process " + std::to_string(pid) + " is not reachable"));
  thread_local std::vector<char> buffer;
  if (auto err = encode_envelope(buffer, sender, aid, mid, stages, content))
    return refuse(pid, aid, sender, mid, make_caf_error(errc::wrong_type, "cannot serialize message: " + sys_.render(err)));
  std::pair<caf::actor_id, std::uint64_t> key{};
  bool fanning_out = false;  // the sender has another request outstanding
  if (mid.is_request() && sender) {
    key = {sender->id(), mid.response_id().integer_value()};
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock{pending_mutex_};
    // The map is ordered by requester first: its other requests are next to this key.
    for (auto it = pending_.lower_bound({key.first, 0});
         !fanning_out && it != pending_.end() && it->first.first == key.first; ++it)
      fanning_out = now - it->second.sent < fan_out_window;
    pending_[key] = {pid, aid, caf::actor_cast<caf::actor_addr>(sender), now};
  }
  // Borrowed before the request leaves, so that even a quick answer wakes only this thread. Not
  // on the I/O thread (or the watcher driving it): that one reads the connection anyway.
  auto reading = !fanning_out && waits_on_this_thread(sender, mid, ctx) &&
                         !mailbox_runtime::instance().io().get_executor().running_in_this_thread()
                     ? conn->borrow_reading()
                     : connection::reading_lease{};
  if (reading) conn->send_now(wire::kind::actor_message, pid, as_bytes(buffer));
  else conn->send(wire::kind::actor_message, pid, as_bytes(buffer));
  reading.read_until(deadline_after(answer_wait), [&] {
    std::lock_guard lock{pending_mutex_};
    return pending_.count(key) == 0;  // deliver_message erased it before the answer went in
  });
}

void actor_router::refuse(std::uint32_t pid, caf::actor_id aid, const caf::strong_actor_ptr& sender, caf::message_id mid,
                          caf::error reason) {
  if (!mid.is_response()) return bounce(sender, mid, std::move(reason));
  // The requester waits in process `pid`: it gets the error as its answer (an error always
  // serializes). Without a route it learns of the process's end instead.
  if (auto conn = route(pid)) {
    thread_local std::vector<char> buffer;
    if (!encode_envelope(buffer, sender, aid, mid, {}, caf::make_message(std::move(reason))))
      conn->send(wire::kind::actor_message, pid, as_bytes(buffer));
  }
}

caf::error actor_router::encode_envelope(std::vector<char>& buffer, caf::strong_actor_ptr sender, caf::actor_id aid,
                                         caf::message_id mid, caf::mailbox_element::forwarding_stack stages,
                                         caf::message content) {
  std::uint64_t id = aid;
  std::uint64_t mid_value = mid.integer_value();
  return encode(buffer, sender, id, mid_value, stages, content);
}

caf::binary_deserializer actor_router::reader(std::span<const std::byte> payload) {
  return {&io_context_, reinterpret_cast<const char*>(payload.data()), payload.size()};  // NOLINT: CAF reads chars
}

void actor_router::fail_pending(std::uint32_t pid, caf::actor_id aid, const caf::error& reason) {
  std::vector<std::pair<caf::actor_addr, std::uint64_t>> failed;
  {
    std::lock_guard lock{pending_mutex_};
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.pid == pid && (aid == 0 || it->second.aid == aid)) {
        failed.emplace_back(it->second.requester, it->first.second);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [requester, response_id] : failed) {
    if (auto ptr = caf::actor_cast<caf::strong_actor_ptr>(requester))
      ptr->enqueue(nullptr, caf::make_message_id(response_id), caf::make_message(reason), nullptr);
  }
}

void actor_router::on_frame(std::uint32_t from_pid, const wire::header& h, std::span<const std::byte> payload) {
  auto k = static_cast<wire::kind>(h.kind);
  switch (k) {
    case wire::kind::actor_message:
    case wire::kind::actor_monitor:
    case wire::kind::actor_down:
      if (h.type_id != self_pid_) {
        if (auto conn = route(static_cast<std::uint32_t>(h.type_id)); conn && h.type_id != from_pid) {
          conn->send(k, h.type_id, payload);
        } else if (k == wire::kind::actor_message) {
          // Undeliverable: decode just enough to answer a request.
          auto source = reader(payload);
          caf::strong_actor_ptr sender;
          std::uint64_t aid = 0, mid_value = 0;
          if (!source(sender, aid, mid_value))
            bounce(sender, caf::make_message_id(mid_value),
                   make_caf_error(errc::host_lost, "process " + std::to_string(h.type_id) + " is not reachable"));
        }
        return;
      }
      if (k == wire::kind::actor_message) return deliver_message(payload);
      if (k == wire::kind::actor_monitor) return deliver_monitor(payload);
      return deliver_down(payload);
    case wire::kind::actor_node_down:
      return deliver_node_down(payload);
    default:
      std::cerr << "mproc: unexpected frame kind " << h.kind << " on an actor connection\n";
  }
}

void actor_router::deliver_message(std::span<const std::byte> payload) {
  auto source = reader(payload);
  caf::strong_actor_ptr sender;
  std::uint64_t aid = 0, mid_value = 0;
  caf::mailbox_element::forwarding_stack stages;
  if (auto err = source(sender, aid, mid_value, stages)) {
    std::cerr << "mproc: dropped an undecodable actor message: " << sys_.render(err) << '\n';
    return;
  }
  auto mid = caf::make_message_id(mid_value);
  caf::message msg;
  if (auto err = source(msg)) {
    return bounce(sender, mid, make_caf_error(errc::wrong_type, "message does not decode here (is every type registered "
                                                                "in both processes?): " + sys_.render(err)));
  }
  if (mid.is_response()) {
    std::lock_guard lock{pending_mutex_};
    pending_.erase({static_cast<caf::actor_id>(aid), mid.integer_value()});
  }
  auto dest = sys_.registry().get(static_cast<caf::actor_id>(aid));
  if (!dest) return bounce(sender, mid, make_caf_error(errc::actor_down, "actor " + std::to_string(aid) + " of process " +
                                                                          std::to_string(self_pid_) + " is gone"));
  // A proxy elsewhere linked to `dest` (proxy.hpp): link dest with our proxy of the linker.
  if (msg.match_elements<caf::atom_value, caf::strong_actor_ptr>()) {
    auto what = msg.get_as<caf::atom_value>(0);
    auto& other = msg.get_as<caf::strong_actor_ptr>(1);
    if ((what == caf::link_atom::get_value() || what == caf::unlink_atom::get_value()) && sender == dest) {
      if (!other) return;
      if (what == caf::link_atom::get_value()) other->get()->add_link(dest->get());
      else other->get()->remove_link(dest->get());
      return;
    }
  }
  runner_.deliver(dest, caf::make_mailbox_element(std::move(sender), mid, std::move(stages), std::move(msg)));
}

void actor_router::deliver_monitor(std::span<const std::byte> payload) {
  monitor_frame m;
  try {
    m = from_bytes<monitor_frame>(payload.data(), payload.size());
  } catch (const error&) {
    return;
  }
  auto actor = sys_.registry().get(static_cast<caf::actor_id>(m.actor));
  if (!actor) return send_down(m.watcher, m.actor, make_caf_error(errc::actor_down, "no such actor"));
  std::weak_ptr<actor_router> self = weak_from_this();
  actor->get()->attach_functor([self, watcher = m.watcher, aid = m.actor](const caf::error& reason) {
    if (auto r = self.lock()) r->send_down(watcher, aid, reason);
  });
}

void actor_router::send_down(std::uint32_t watcher, caf::actor_id aid, const caf::error& reason) {
  auto conn = route(watcher);
  if (!conn) return;
  std::vector<char> buffer;
  std::uint32_t origin = self_pid_;
  std::uint64_t id = aid;
  auto r = reason;
  if (encode(buffer, origin, id, r)) return;
  conn->send(wire::kind::actor_down, watcher, as_bytes(buffer));
}

void actor_router::deliver_down(std::span<const std::byte> payload) {
  auto source = reader(payload);
  std::uint32_t origin = 0;
  std::uint64_t aid = 0;
  caf::error reason;
  if (source(origin, aid, reason)) return;
  // The actor's requests fail as actor_down (or host_lost), whatever the actor's own reason was.
  auto code = to_error_code(reason);
  fail_pending(origin, static_cast<caf::actor_id>(aid),
               code == errc::host_lost ? reason : make_caf_error(errc::actor_down, "the actor ended: " + describe(reason)));
  if (auto nid = node_of(origin)) proxies_.erase(*nid, static_cast<caf::actor_id>(aid), std::move(reason));
}

void actor_router::deliver_node_down(std::span<const std::byte> payload) {
  auto source = reader(payload);
  std::uint32_t pid = 0;
  caf::error reason;
  if (source(pid, reason)) return;
  kill_process_proxies(pid, reason);
}

void actor_router::kill_process_proxies(std::uint32_t pid, const caf::error& reason) {
  fail_pending(pid, 0, reason);
  auto nid = node_of(pid);
  if (!nid) return;
  for (auto& p : proxies_.get_all(*nid)) proxies_.erase(*nid, p->id(), reason);
  std::lock_guard lock{mutex_};
  nodes_.erase(pid);
}

std::optional<caf::node_id> actor_router::node_of(std::uint32_t pid) {
  std::lock_guard lock{mutex_};
  if (auto it = nodes_.find(pid); it != nodes_.end()) return it->second;
  return std::nullopt;
}

std::vector<std::byte> actor_router::node_bytes(const caf::node_id& nid) {
  std::vector<char> buffer;
  auto copy = nid;
  if (encode(buffer, copy)) return {};
  auto bytes = as_bytes(buffer);
  return {bytes.begin(), bytes.end()};
}

std::optional<caf::node_id> actor_router::node_from_bytes(std::span<const std::byte> bytes) {
  auto source = reader(bytes);
  caf::node_id nid;
  if (source(nid) || pid_of(nid) == 0) return std::nullopt;
  return nid;
}

actor_peer_hello actor_router::own_hello() {
  return {self_pid_, node_bytes(sys_.node()), runtime_actor_, registrations_};
}

void actor_router::post(std::function<void()> f) { boost::asio::post(mailbox_runtime::instance().io(), std::move(f)); }

// -- parent side ------------------------------------------------------------------------------

std::string actor_router::listen(std::error_code& ec) {
  std::lock_guard lock{mutex_};
  ec.clear();
  if (stopped_) return ec = make_error_code(errc::node_closed), std::string{};
  if (!path_.empty()) return path_;
  node* n = node::current_or_null();
  if (n == nullptr) return ec = make_error_code(errc::no_node), std::string{};
  auto dir = n->impl().runtime_dir(ec);
  if (ec) return {};
  std::string path = (dir / "actors.sock").string();
  unique_fd fd = listen_private(path, ec);
  if (ec) return {};
  listener_.emplace(mailbox_runtime::instance().io(), fd.release());
  path_ = path;
  accept_next();
  return path_;
}

void actor_router::accept_next() {
  std::weak_ptr<actor_router> self = weak_from_this();
  listener_->async_wait(boost::asio::posix::stream_descriptor::wait_read, [self](const boost::system::error_code& ec) {
    auto r = self.lock();
    if (ec || !r) return;
    for (;;) {
      unique_fd fd{::accept4(r->listener_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC)};
      if (!fd) break;
      r->on_accepted(std::move(fd));
    }
    std::lock_guard lock{r->mutex_};
    if (!r->stopped_) r->accept_next();
  });
}

void actor_router::on_accepted(unique_fd fd) {
  if (!peer_is_same_user(fd.get())) return;  // closed by unique_fd: another user gets nothing
  auto conn = std::make_shared<connection>(mailbox_runtime::instance().io(), std::move(fd));
  conn->set_direct_writes(true);
  batch_inline_runs(*conn);
  auto bound = std::make_shared<std::uint32_t>(0);  // the host's pid once its hello arrived
  std::weak_ptr<actor_router> self = weak_from_this();
  std::weak_ptr<connection> weak_conn = conn;
  {
    std::lock_guard lock{mutex_};
    handshaking_.push_back(conn);
  }
  conn->start(
      [self, weak_conn, bound](const wire::header& h, std::span<const std::byte> payload, fd_set_owned&) {
        auto r = self.lock();
        auto c = weak_conn.lock();
        if (!r || !c) return;
        if (*bound != 0) return r->on_frame(*bound, h, payload);
        if (static_cast<wire::kind>(h.kind) != wire::kind::actor_hello) return c->close();
        r->on_host_hello(c, payload, bound);
      },
      [self, bound, weak_conn](std::error_code) {
        auto r = self.lock();
        if (!r) return;
        {
          std::lock_guard lock{r->mutex_};
          auto c = weak_conn.lock();
          std::erase_if(r->handshaking_, [&](const auto& x) { return x == c || !x->alive(); });
        }
        if (*bound != 0) r->on_downlink_closed(*bound);
      });
}

void actor_router::on_host_hello(const std::shared_ptr<connection>& conn, std::span<const std::byte> payload,
                                 std::shared_ptr<std::uint32_t> bound_pid) {
  actor_peer_hello hello;
  try {
    hello = from_bytes<actor_peer_hello>(payload.data(), payload.size());
  } catch (const error&) {
    return conn->close();
  }
  auto nid = node_from_bytes(hello.node);
  auto refuse = [&](errc code, std::string text) {
    {
      std::lock_guard lock{mutex_};
      refusals_[hello.pid] = {static_cast<std::int32_t>(code), text};
      std::erase(handshaking_, conn);
    }
    changed_.notify_all();
    conn->send_message(wire::kind::actor_refused, wire::status_message{static_cast<std::int32_t>(code), std::move(text)});
    conn->close();
  };
  if (!nid || pid_of(*nid) != hello.pid) return refuse(errc::bad_message, "hello names no process");
  if (hello.registrations != registrations_) {
    // Name what differs, both ways, so the fix is obvious.
    auto lines = [](const std::string& s) {
      std::set<std::string> out;
      std::size_t at = 0;
      while (at < s.size()) {
        auto end = s.find('\n', at);
        if (end == std::string::npos) end = s.size();
        out.insert(s.substr(at, end - at));
        at = end + 1;
      }
      return out;
    };
    auto ours = lines(registrations_), theirs = lines(hello.registrations);
    std::string text = "actor registrations differ:";
    for (auto& n : ours)
      if (!theirs.count(n)) text += " only the parent has " + n + ";";
    for (auto& n : theirs)
      if (!ours.count(n)) text += " only the host has " + n + ";";
    return refuse(errc::wrong_type, text);
  }
  *bound_pid = hello.pid;
  conn->send_message(wire::kind::actor_hello, own_hello());
  {
    std::lock_guard lock{mutex_};
    downlinks_[hello.pid] = peer{conn, *nid, hello.runtime_actor};
    nodes_[hello.pid] = *nid;
    std::erase(handshaking_, conn);
  }
  changed_.notify_all();
}

caf::strong_actor_ptr actor_router::await_host(const std::shared_ptr<process_state>& proc,
                                               std::chrono::steady_clock::time_point until, std::error_code& ec,
                                               std::string& why) {
  pid_t pid;
  {
    std::lock_guard plock{proc->mutex};
    pid = proc->pid;
  }
  auto upid = static_cast<std::uint32_t>(pid);
  {
    std::lock_guard lock{mutex_};
    hosts_[upid] = proc;
  }
  std::unique_lock lock{mutex_};
  for (;;) {
    if (auto it = downlinks_.find(upid); it != downlinks_.end()) {
      auto nid = it->second.node;
      auto aid = it->second.runtime_actor;
      lock.unlock();
      ec.clear();
      return proxies_.get_or_put(nid, aid);
    }
    if (auto it = refusals_.find(upid); it != refusals_.end()) {
      why = it->second.text;
      ec = make_error_code(static_cast<errc>(it->second.code));
      refusals_.erase(it);
      return nullptr;
    }
    if (stopped_) return ec = make_error_code(errc::node_closed), nullptr;
    bool ended;
    {
      std::lock_guard plock{proc->mutex};
      ended = proc->exitcode.has_value();
    }
    if (ended) {
      why = describe(host_reason(upid, proc));
      ec = make_error_code(errc::spawn_failed);
      return nullptr;
    }
    if (std::chrono::steady_clock::now() >= until) {
      why = "the host did not connect in time";
      ec = make_error_code(errc::timeout);
      return nullptr;
    }
    changed_.wait_for(lock, std::chrono::milliseconds(5));
  }
}

void actor_router::on_downlink_closed(std::uint32_t pid) {
  std::shared_ptr<process_state> proc;
  {
    std::lock_guard lock{mutex_};
    downlinks_.erase(pid);
    if (auto it = hosts_.find(pid); it != hosts_.end()) {
      proc = it->second;
      hosts_.erase(it);
    }
    if (stopped_) return;
  }
  // Off the I/O thread: learning the exit status may take a moment. Detached, holding only a weak
  // reference; shutdown() waits for it (system_users_), because it uses the actor system.
  std::weak_ptr<actor_router> self = weak_from_this();
  std::thread([self, pid, proc] {
    auto reason = host_reason(pid, proc);
    auto r = self.lock();
    if (!r) return;
    std::shared_lock system_in_use{r->system_users_};
    {
      std::lock_guard guard{r->mutex_};
      if (r->stopped_) return;  // the actor system may be gone
    }
    r->kill_process_proxies(pid, reason);
    // Tell the other hosts, whose proxies of that process die the same way.
    std::vector<char> buffer;
    std::uint32_t dead = pid;
    auto copy = reason;
    if (r->encode(buffer, dead, copy)) return;
    std::vector<std::shared_ptr<connection>> others;
    {
      std::lock_guard guard{r->mutex_};
      for (auto& [p, link] : r->downlinks_) others.push_back(link.conn);
    }
    for (auto& c : others) c->send(wire::kind::actor_node_down, 0, as_bytes(buffer));
  }).detach();
}

void actor_router::batch_inline_runs(connection& conn) {
  // The router is held from one hook to the other: the batch's actors must run on its runner.
  auto held = std::make_shared<std::shared_ptr<actor_router>>();
  std::weak_ptr<actor_router> self = weak_from_this();
  conn.set_read_hooks(
      [self, held] {
        if ((*held = self.lock())) (*held)->runner_.begin_batch();
      },
      [held] {
        if (auto r = std::exchange(*held, nullptr)) r->runner_.end_batch();
      });
}

// -- host side --------------------------------------------------------------------------------

void actor_router::connect_uplink(const std::string& path, std::chrono::steady_clock::time_point until,
                                  std::error_code& ec, std::string& why) {
  unique_fd fd = mailbox_runtime::connect_to(path, ec);
  if (ec) return void(why = "cannot connect to " + path);
  auto conn = std::make_shared<connection>(mailbox_runtime::instance().io(), std::move(fd));
  conn->set_direct_writes(true);
  // A host mostly serves: its actors' answers go out on this connection, and a blocking request
  // from inside a host is rare. Without gates its reads skip their extra epoll hop (measured:
  // pinned round trip 18.0 -> 16.7 us); such a request takes the I/O thread's path instead.
  conn->set_borrowable(false);
  batch_inline_runs(*conn);
  struct handshake {
    bool done = false;
    std::error_code ec;
    std::string why;
    actor_peer_hello hello;
  };
  auto hs = std::make_shared<handshake>();
  std::weak_ptr<actor_router> self = weak_from_this();
  std::weak_ptr<connection> c_weak = conn;
  conn->start(
      [self, hs, c_weak](const wire::header& h, std::span<const std::byte> payload, fd_set_owned&) {
        auto r = self.lock();
        if (!r) return;
        bool first;
        {
          std::lock_guard lock{r->mutex_};
          first = !hs->done;
        }
        if (!first) return r->on_frame(r->uplink_pid_, h, payload);
        handshake result;
        result.done = true;
        std::optional<caf::node_id> parent_node;
        try {
          if (static_cast<wire::kind>(h.kind) == wire::kind::actor_hello) {
            result.hello = from_bytes<actor_peer_hello>(payload.data(), payload.size());
            parent_node = r->node_from_bytes(result.hello.node);
            if (!parent_node) {
              result.ec = make_error_code(errc::bad_message);
              result.why = "the parent's hello names no process";
            }
          } else {
            auto status = from_bytes<wire::status_message>(payload.data(), payload.size());
            result.ec = make_error_code(static_cast<errc>(status.code));
            result.why = status.text;
          }
        } catch (const error&) {
          result.ec = make_error_code(errc::bad_message);
          result.why = "undecodable answer from the parent";
        }
        {
          // The uplink is in place before the next frame (the parent may message us at once).
          std::lock_guard lock{r->mutex_};
          if (parent_node) {
            r->uplink_pid_ = result.hello.pid;
            r->nodes_[result.hello.pid] = *parent_node;
            r->uplink_ = peer{c_weak.lock(), *parent_node, result.hello.runtime_actor};
          }
          *hs = std::move(result);
        }
        r->changed_.notify_all();
      },
      [self, hs](std::error_code) {
        auto r = self.lock();
        if (!r) return;
        {
          std::lock_guard lock{r->mutex_};
          if (!hs->done) {
            hs->done = true;
            hs->ec = make_error_code(errc::node_closed);
            hs->why = "the parent closed the connection";
            return r->changed_.notify_all();
          }
        }
        r->on_uplink_closed();
      });
  conn->send_message(wire::kind::actor_hello, own_hello());
  std::unique_lock lock{mutex_};
  if (!changed_.wait_until(lock, until, [&] { return hs->done; })) {
    ec = make_error_code(errc::timeout);
    why = "the parent did not answer";
    return;
  }
  ec = hs->ec;
  why = hs->why;
}

caf::strong_actor_ptr actor_router::parent_runtime_actor() {
  std::optional<peer> up;
  {
    std::lock_guard lock{mutex_};
    up = uplink_;
  }
  if (!up) return nullptr;
  return proxies_.get_or_put(up->node, up->runtime_actor);
}

void actor_router::on_uplink_closed() {
  {
    std::lock_guard lock{mutex_};
    uplink_closed_ = true;
  }
  changed_.notify_all();
}

int actor_router::wait_until_host_ends() {
  std::unique_lock lock{mutex_};
  changed_.wait(lock, [&] { return uplink_closed_ || host_exit_.has_value(); });
  return host_exit_.value_or(0);
}

void actor_router::stop_host(int code) {
  {
    std::lock_guard lock{mutex_};
    if (!host_exit_) host_exit_ = code;
  }
  changed_.notify_all();
}

void actor_router::shutdown() noexcept {
  std::vector<std::shared_ptr<connection>> conns;
  {
    std::lock_guard lock{mutex_};
    if (stopped_) return;
    stopped_ = true;
    if (uplink_) conns.push_back(uplink_->conn);
    for (auto& [pid, link] : downlinks_) conns.push_back(link.conn);
    for (auto& c : handshaking_) conns.push_back(c);
    if (listener_) {
      boost::system::error_code ignored;
      listener_->close(ignored);
    }
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  changed_.notify_all();
  {
    std::unique_lock users_done{system_users_};  // a host's end being announced finishes first
  }
  for (auto& c : conns) {
    c->flush(deadline_after(std::chrono::milliseconds(200)));
    c->close();
    c->stop_handlers();
  }
  runner_.stop();
  proxies_.clear();
}

}  // namespace mproc::detail
