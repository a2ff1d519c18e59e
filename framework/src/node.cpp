#include "mproc/node.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>

#include "bootstrap.hpp"
#include "frame.hpp"
#include "hold_across_fork.hpp"
#include "internal_wait.hpp"
#include "mproc/detail/program_wait.hpp"
#include "mproc/detail/queue_core.hpp"
#include "node_impl.hpp"
#include "runtime_dir.hpp"

extern char** environ;

namespace mproc {
namespace detail {
namespace {

std::atomic<node*> current{nullptr};

std::vector<std::string> read_cmdline() {
  std::ifstream in{"/proc/self/cmdline", std::ios::binary};
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  if (args.empty()) args.emplace_back("mproc-child");
  return args;
}

/// Environment for an exec'd image of this program: ours minus stale mproc variables, plus
/// the role it must take.
std::vector<std::string> child_environment(const char* role, int fd, pid_t parent) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view v{*e};
    if (v.starts_with("MPROC_ROLE=") || v.starts_with("MPROC_FD=") || v.starts_with("MPROC_PARENT_PID=")) continue;
    env.emplace_back(v);
  }
  env.push_back(std::string{role_env} + "=" + role);
  env.push_back(std::string{fd_env} + "=" + std::to_string(fd));
  env.push_back(std::string{parent_env} + "=" + std::to_string(parent));
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

/// posix_spawn of /proc/self/exe with `fd` as descriptor 3 and nothing else inherited.
pid_t exec_self(const std::vector<std::string>& argv_in, const char* role, int fd, std::error_code& ec) {
  constexpr int target_fd = 3;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, target_fd);
  posix_spawn_file_actions_addclosefrom_np(&actions, target_fd + 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  auto argv = argv_in;
  auto env = child_environment(role, target_fd, ::getpid());
  auto cargv = c_strings(argv);
  auto cenv = c_strings(env);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    ec = {rc, std::system_category()};
    return 0;
  }
  ec.clear();
  return pid;
}

std::uint8_t entry_kind_byte(entry_kind k) { return static_cast<std::uint8_t>(k); }

// SIGINT: the handler counts the signal and wakes the I/O thread through a pipe. finish()
// consults the count before it reports an exit, so that a child that died of the very Ctrl-C
// that reached the node (a terminal sends it to the whole group) never ends a blocked join
// normally before the interrupt is delivered. The pipe is process-wide, made once and never
// closed: a handler may still run after a node is gone.
std::atomic<std::uint64_t> sigint_count{0};
int sigint_pipe[2] = {-1, -1};
std::once_flag sigint_pipe_once;

void count_sigint(int) {
  int saved = errno;
  sigint_count.fetch_add(1);
  char byte = 0;
  ssize_t ignored = ::write(sigint_pipe[1], &byte, 1);
  (void)ignored;
  errno = saved;
}

}  // namespace

node* current_node() noexcept { return current.load(); }
void set_current_node(node* n) noexcept { current.store(n); }

node_impl::node_impl(node_options options, bool child, std::string identity)
    : options_(std::move(options)), child_(child), identity_(std::move(identity)) {}

const std::vector<std::string>& node_impl::argv() {
  std::call_once(argv_once_, [this] { argv_ = read_cmdline(); });  // only exec needs it
  return argv_;
}

node_impl::~node_impl() { shutdown(); }

void node_impl::open(std::error_code& ec) {
  if (auto dup = duplicate_entry_name(); !dup.empty()) {
    ec = make_error_code(errc::duplicate_entry);
    std::fprintf(stderr, "mproc: two different entry points are registered as '%s'\n", dup.c_str());
    return;
  }
  runtime_dir(ec);
  if (ec) return;
  ensure_running(options_.method == start_method::forkserver, ec);
}

const std::filesystem::path& node_impl::runtime_dir(std::error_code& ec) {
  std::lock_guard lock{start_mutex_};
  ec.clear();
  if (runtime_dir_.empty()) runtime_dir_ = create_runtime_dir(runtime_root(options_.runtime_root), ec);
  return runtime_dir_;
}

void node_impl::ensure_running(bool want_forkserver, std::error_code& ec) {
  std::lock_guard lock{start_mutex_};
  ec.clear();
  if (want_forkserver && !forkserver_sock_) {
    if (thread_count() == 1) {
      start_forkserver(ec);  // forked: must happen before the I/O thread exists
    } else {
      // Exec'd: from the I/O thread, which lives as long as the node, because
      // PR_SET_PDEATHSIG follows the thread that created the server.
      if (!io_running_) start_io_thread();
      run_on_io([&] { start_forkserver(ec); });
    }
  }
  if (!ec && !io_running_) start_io_thread();
}

void node_impl::start_forkserver(std::error_code& ec) {
  auto [ours, theirs] = make_socketpair(SOCK_SEQPACKET, ec);
  if (ec) return;
  pid_t node_pid = ::getpid();
  pid_t pid;
  if (thread_count() == 1) {
    // No other thread exists, so no lock can be held across this fork: the server is clean.
    std::cout.flush();
    std::fflush(nullptr);
    pid = ::fork();
    if (pid < 0) {
      ec = last_error();
      return;
    }
    if (pid == 0) {
      die_with_parent(node_pid);
      ours.reset();
      run_forkserver(theirs.release(), node_pid);
    }
  } else {
    // Threads run already (CAF, Asio, the user's): start the server as a fresh image instead.
    pid = exec_self(argv(), "forkserver", theirs.get(), ec);
    if (ec) return;
  }
  forkserver_pid_ = pid;
  forkserver_sock_ = std::move(ours);
  if (io_running_) {
    boost::asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->watch_forkserver();
    });
  }
}

void node_impl::start_io_thread() {
  if (forkserver_sock_) watch_forkserver();
  if (options_.handle_sigint && !child_) watch_sigint();
  io_running_ = true;
  io_thread_ = std::thread{[this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  }};
  fork_gate_.emplace(io_, io_thread_.get_id());  // parked across every fork() (fork_gate.hpp)
}

void node_impl::run_on_io(const std::function<void()>& f) {
  if (std::this_thread::get_id() == io_thread_.get_id()) return f();
  std::promise<void> done;
  boost::asio::post(io_, [&] {
    f();
    done.set_value();
  });
  done.get_future().wait();
}

// ---- starting a process -----------------------------------------------------------------

void node_impl::start(process& p, std::error_code& ec) {
  auto& s = process_access::state(p);
  if (closing_) return void(ec = make_error_code(errc::node_closed));
  if (interrupted_) return void(ec = make_error_code(errc::interrupted));
  start_method method = s->method.value_or(options_.method);

  start_message msg;
  if (method != start_method::fork) {
    // The target must be reachable by name in another image.
    if (typeid(p) != typeid(process)) {
      const entry_info* e = find_entry_by_type(typeid(p));
      if (e == nullptr)
        return void(ec = make_error_code(errc::unknown_entry));
      msg.kind = entry_kind_byte(entry_kind::process_class);
      msg.entry = e->name;
      transfer_out transfer;  // pipe ends and queue handles among its members leave traces here
      msg.args = e->encode(p);
      s->passed = std::move(transfer.bundle());
    } else if (s->entry_fn != nullptr) {
      const entry_info* e = find_entry_by_fn(s->entry_fn);
      if (e == nullptr) return void(ec = make_error_code(errc::unknown_entry));
      msg.kind = entry_kind_byte(entry_kind::function);
      msg.entry = e->name;
      msg.args = s->args;
    } else if (s->local) {
      return void(ec = make_error_code(errc::unsupported_target));
    }
  }

  ensure_running(method == start_method::forkserver, ec);
  if (ec) return;
  auto [ours, theirs] = make_socketpair(SOCK_STREAM, ec);
  if (ec) return;

  s->id = ++counter_;
  {
    // In the table before the child exists: its exit may be reported before start() returns.
    std::lock_guard lock{table_mutex_};
    table_.emplace(s->id, s);
  }
  std::string identity = identity_.empty() ? std::to_string(s->id) : identity_ + ":" + std::to_string(s->id);
  if (s->name.empty()) s->name = "process-" + identity;
  s->channel = std::move(ours);
  msg.name = s->name;
  msg.daemon = s->daemon;
  msg.parent_pid = ::getpid();
  msg.method = static_cast<std::uint8_t>(options_.method);
  msg.identity = identity;
  msg.runtime_root = options_.runtime_root.string();
  msg.kill_grace_ms = options_.kill_grace.count();

  auto start_frame = to_bytes(msg);
  switch (method) {
    case start_method::fork:
      spawn_forked(p, *s, identity, std::move(theirs), ec);
      break;
    case start_method::spawn:
      spawn_exec(*s, std::move(theirs), ec);
      if (!ec) send_start(*s, start_frame);
      break;
    case start_method::forkserver:
      spawn_via_forkserver(s, std::move(theirs), start_frame, ec);
      break;
  }
  s->passed.fds.reset();  // sent with the start message, or inherited by a forked child
  if (ec) {
    std::lock_guard lock{table_mutex_};
    table_.erase(s->id);
    return;
  }
  if (method != start_method::forkserver) watch_direct_child(s);
  // The child has the target now (a copy, or its encoding); the parent never runs it. Drop our
  // copy of the arguments: handles among them (a queue that can put, a pipe end) must not stay
  // alive here as long as the process object does.
  s->local = nullptr;
}

void node_impl::spawn_forked(process& p, process_state& s, const std::string& identity, unique_fd child_end,
                             std::error_code& ec) {
  child_setup setup{s.name, s.daemon, ::getpid(), options_.method, identity, options_.runtime_root, options_.kill_grace};
  std::cout.flush();  // or the child prints the parent's buffered output a second time
  std::fflush(nullptr);
  pid_t parent = ::getpid();
  // The node's I/O thread (and the mailbox runtime's) are parked for the fork by the fork gate.
  // Other threads of the program remain the fork method's documented hazard.
  pid_t pid = ::fork();
  if (pid < 0) return void(ec = last_error());
  if (pid == 0) {
    die_with_parent(parent);
    ::signal(SIGINT, SIG_DFL);
    s.channel.reset();  // the node's end of our channel
    s.passed.fds.reset();  // duplicates made for other start methods: the originals are inherited
    s.passed.at_end.clear();  // the parent releases the tickets, not the child
    s.started = true;     // the copied handle now describes this process (no lock: copied memory)
    s.self = true;
    s.pid = ::getpid();
    int channel = child_end.release();
    run_forked_child(channel, setup, [&p] { process_access::run(p); });
  }
  std::lock_guard lock{s.mutex};
  s.pid = pid;
  s.pidfd.reset(pidfd_open(pid, ec));
}

void node_impl::spawn_exec(process_state& s, unique_fd child_end, std::error_code& ec) {
  // posix_spawn from the I/O thread: PR_SET_PDEATHSIG follows the *thread* that created the
  // child, and the I/O thread lives as long as the node, unlike the caller's thread may.
  pid_t pid = 0;
  run_on_io([&] { pid = exec_self(argv(), "child", child_end.get(), ec); });
  if (ec) return;
  std::lock_guard lock{s.mutex};
  s.pid = pid;
  s.pidfd.reset(pidfd_open(pid, ec));
}

void node_impl::send_start(process_state& s, const std::vector<std::byte>& start_frame) {
  std::error_code ec;  // a child that died before reading is reported by its exit status
  write_frame(s.channel.get(), frame_kind::start, start_frame, s.passed.fds.fds(), ec);
}

void node_impl::spawn_via_forkserver(const std::shared_ptr<process_state>& s, unique_fd child_end,
                                     const std::vector<std::byte>& start_frame, std::error_code& ec) {
  {
    std::lock_guard lock{table_mutex_};
    pending_.emplace(s->id, s);
  }
  forkserver_message m{forkserver_message::spawn, s->id, 0, 0};
  std::array<int, 1> fds{child_end.get()};
  {
    std::lock_guard lock{forkserver_write_};
    if (!forkserver_sock_) ec = make_error_code(errc::node_closed);
    else send_packet(forkserver_sock_.get(), std::as_bytes(std::span{&m, 1}), fds, ec);
  }
  // The server is gone (killed?): that is what node_closed means, not the socket's errno.
  if (ec == std::errc::broken_pipe || ec == std::errc::connection_reset) ec = make_error_code(errc::node_closed);
  // Written while the server forks, so the child finds it at once (and a start message larger
  // than the socket buffer cannot deadlock: the child is on its way to read it).
  if (!ec) send_start(*s, start_frame);
  if (!ec) {
    std::unique_lock lock{s->mutex};
    s->changed.wait(lock, [&] { return s->pid != 0 || s->spawn_error; });
    ec = s->spawn_error;
  }
  if (ec) {
    std::lock_guard lock{table_mutex_};
    pending_.erase(s->id);
  }
}

// ---- learning of exits ------------------------------------------------------------------

std::vector<std::shared_ptr<process_state>> node_impl::snapshot() const {
  std::lock_guard lock{table_mutex_};
  std::vector<std::shared_ptr<process_state>> states;
  for (const auto& [id, s] : table_) states.push_back(s);
  return states;
}

template <class Map>
std::shared_ptr<process_state> node_impl::take(Map& map, typename Map::key_type key) {
  std::lock_guard lock{table_mutex_};
  auto it = map.find(key);
  if (it == map.end()) return nullptr;
  auto s = std::move(it->second);
  map.erase(it);
  return s;
}

void node_impl::watch_forkserver() {
  if (!forkserver_watch_) {
    forkserver_watch_.emplace(io_, ::fcntl(forkserver_sock_.get(), F_DUPFD_CLOEXEC, 3));
  }
  // Handlers that may still be pending at shutdown hold the node weakly: a strong reference
  // in an aborted operation, kept by the node's own io_context, would keep the node alive for
  // ever (a leak that Asio's signal_set, a global registry, used to hide from LeakSanitizer).
  forkserver_watch_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                [weak = weak_from_this()](const boost::system::error_code& ec) {
                                  auto self = weak.lock();
                                  if (!ec && self) self->on_forkserver_readable();
                                });
}

void node_impl::on_forkserver_readable() {
  for (;;) {
    forkserver_message m{};
    std::vector<unique_fd> fds;
    std::error_code ec;
    std::size_t n = recv_packet(forkserver_watch_->native_handle(), std::as_writable_bytes(std::span{&m, 1}), fds,
                                ec, true);
    if (ec == std::errc::resource_unavailable_try_again) break;
    if (ec || n == 0) {
      // The fork server is gone (killed?). Its children died with it (PR_SET_PDEATHSIG). It is
      // our child: make sure it is dead and reap it now, not only at shutdown (no zombie). Until
      // reaped its pid cannot be anybody else's, so the signal is safe.
      if (!forkserver_reaped_ && forkserver_pid_ > 0) {
        ::kill(forkserver_pid_, SIGKILL);
        int status;
        while (::waitpid(forkserver_pid_, &status, 0) < 0 && errno == EINTR) {
        }
        forkserver_reaped_ = true;
      }
      std::vector<std::shared_ptr<process_state>> lost;
      {
        std::lock_guard lock{table_mutex_};
        for (auto& [pid, s] : by_pid_) lost.push_back(s);
        for (auto& [id, s] : pending_) lost.push_back(s);
        by_pid_.clear();
        pending_.clear();
      }
      for (auto& s : lost) {
        {
          std::lock_guard lock{s->mutex};
          if (s->pid == 0) s->spawn_error = make_error_code(errc::node_closed);
        }
        finish(s, -SIGKILL, remote_exception{"mproc::error", "the fork server died"});
      }
      return;
    }
    if (n != sizeof m) continue;
    if (m.kind == forkserver_message::spawned) {
      auto s = take(pending_, m.id);
      if (!s) continue;
      if (m.value == 0) {
        std::lock_guard lock{table_mutex_};
        by_pid_.emplace(m.pid, s);  // before any exit report for it: the socket keeps order
      }
      std::lock_guard lock{s->mutex};
      if (m.value != 0) {
        s->spawn_error = {m.value, std::system_category()};
      } else {
        s->pid = m.pid;
        if (!fds.empty()) s->pidfd = std::move(fds[0]);
      }
      s->changed.notify_all();
    } else if (m.kind == forkserver_message::exited) {
      if (auto s = take(by_pid_, m.pid)) finish(s, exitcode_from_status(m.value));
    }
  }
  watch_forkserver();
}

void node_impl::watch_direct_child(const std::shared_ptr<process_state>& s) {
  int fd;
  {
    std::lock_guard lock{s->mutex};
    fd = ::fcntl(s->pidfd.get(), F_DUPFD_CLOEXEC, 3);
  }
  boost::asio::post(io_, [self = shared_from_this(), s, fd] {
    auto watch = std::make_shared<boost::asio::posix::stream_descriptor>(self->io_, fd);
    watch->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [self, s, watch](const boost::system::error_code& ec) {
                        if (ec) return;
                        // Reaps exactly this child: never races another waitpid user's children.
                        std::error_code wait_ec;
                        auto code = reap_pidfd(watch->native_handle(), true, wait_ec);
                        if (!code) {
                          self->finish(s, 255, remote_exception{"mproc::error",
                                                                "the child was reaped by someone else's waitpid"});
                          return;
                        }
                        self->finish(s, *code);
                      });
  });
}

void node_impl::finish(const std::shared_ptr<process_state>& s, int exitcode, std::optional<remote_exception> lost) {
  // A SIGINT that already arrived goes first: its waiters must hear "interrupted", not an exit
  // that the same Ctrl-C may have caused.
  if (sigint_watch_) check_sigint();
  // The child wrote any exception report before it exited, so it is in the socket already:
  // drain without blocking.
  std::vector<std::byte> bytes;
  std::unique_lock lock{s->mutex};
  if (s->exitcode) return;
  if (s->channel) {
    std::byte buf[4096];
    for (;;) {
      ssize_t n = ::recv(s->channel.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      bytes.insert(bytes.end(), buf, buf + n);
    }
    s->channel.reset();
  }
  std::error_code ec;
  for (auto& f : parse_frames(bytes, ec)) {
    if (f.kind != frame_kind::exception) continue;
    try {
      s->exception = from_bytes<remote_exception>(f.payload.data(), f.payload.size());
    } catch (const error&) {
      s->exception = remote_exception{"mproc::error", "undecodable exception report"};
    }
  }
  if (!s->exception && lost) s->exception = std::move(lost);
  s->exitcode = exitcode;
  s->pidfd.reset();
  // Queue handles it was given stop counting as writers before anybody hears of the exit.
  s->passed.end();
  s->changed.notify_all();
  lock.unlock();
  {
    std::lock_guard table_lock{table_mutex_};
    table_.erase(s->id);
  }
  maybe_reraise_sigint();
}

// ---- SIGINT -----------------------------------------------------------------------------

void node_impl::watch_sigint() {
  if (!sigint_watch_) {
    std::call_once(sigint_pipe_once, [] {
      if (::pipe2(sigint_pipe, O_CLOEXEC | O_NONBLOCK) != 0) sigint_pipe[0] = sigint_pipe[1] = -1;
    });
    if (sigint_pipe[0] < 0) return;  // SIGINT keeps its default action
    sigints_handled_ = sigint_count.load();
    sigint_watch_.emplace(io_, ::fcntl(sigint_pipe[0], F_DUPFD_CLOEXEC, 3));
    struct sigaction sa {};
    sa.sa_handler = &count_sigint;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigint_installed_ = ::sigaction(SIGINT, &sa, &previous_sigint_) == 0;
  }
  // A weak reference: the wait stays pending until shutdown, and must not keep the node alive.
  sigint_watch_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            [weak = weak_from_this()](const boost::system::error_code& ec) {
                              auto self = weak.lock();
                              if (ec || !self) return;
                              char buf[64];
                              while (::read(self->sigint_watch_->native_handle(), buf, sizeof buf) > 0) {
                              }
                              self->check_sigint();
                              self->watch_sigint();
                            });
}

void node_impl::check_sigint() {
  // A SIGINT sent to the process may still wait for the thread the kernel picked for it (say
  // the main thread, blocked in join, not yet scheduled). Blocking it here makes it show as
  // pending; unblocking it then hands it to this thread, whose handler counts it before
  // sigprocmask returns. So a Ctrl-C that is already on its way is counted now.
  sigset_t sigint_only, previous;
  sigemptyset(&sigint_only);
  sigaddset(&sigint_only, SIGINT);
  if (::pthread_sigmask(SIG_BLOCK, &sigint_only, &previous) == 0) ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  std::uint64_t count = sigint_count.load();
  if (count == sigints_handled_) return;
  sigints_handled_ = count;
  on_sigint();
}

void node_impl::claim_sigint(std::uint64_t count) noexcept {
  std::uint64_t claimed = sigint_claimed_.load();
  while (claimed < count && !sigint_claimed_.compare_exchange_weak(claimed, count)) {
  }
}

void node_impl::on_sigint() {
  interrupted_ = true;
  // A caller that already reported this interrupt (program_wait) counts as waiting too.
  bool anybody_waiting = blocked_ > 0 || sigint_claimed_.load() >= sigints_handled_;
  signal_all(SIGTERM, false);
  auto states = snapshot();
  // Wake every blocked caller (they throw errc::interrupted). Waiters on processes no longer in
  // the table see their exit instead, which also ends their wait.
  for (auto& s : states) {
    std::lock_guard lock{s->mutex};
    ++s->interrupts;
    s->changed.notify_all();
  }
  escalate_after(options_.kill_grace);
  // Nobody to hand the interrupt to: behave like Ctrl-C always does, once children are reaped.
  reraise_pending_ = !anybody_waiting;
  maybe_reraise_sigint();
}

// ---- blocking calls of the program --------------------------------------------------------

program_wait::program_wait(std::error_code& ec) noexcept : program_wait(ec, [] {
  node* n = current_node();
  return n != nullptr ? n->impl().shared_from_this() : nullptr;
}()) {}

program_wait::program_wait(std::error_code& ec, std::shared_ptr<node_impl> owner) noexcept {
  ec.clear();
  if (!owner || internal_wait_scope::active()) return;
  if (owner->take_pending_interrupt()) {
    ec = make_error_code(errc::interrupted);
    return;
  }
  owner->enter_wait();
  sigints_ = sigint_count.load();
  node_ = std::move(owner);
}

program_wait::~program_wait() {
  if (node_) node_->leave_wait();
}

bool program_wait::interrupted() noexcept {
  if (!node_ || !node_->handles_sigint()) return false;
  // The handler counted the signal before the I/O thread handled it, or before this thread woke
  // if it was this thread that ran the handler.
  std::uint64_t count = sigint_count.load();
  if (count == sigints_) return false;
  node_->claim_sigint(count);
  return true;
}

std::chrono::steady_clock::time_point program_wait::next_check(std::chrono::steady_clock::time_point until) noexcept {
  auto now = std::chrono::steady_clock::now();
  return until - now > check_interval ? now + check_interval : until;
}

void node_impl::escalate_after(std::chrono::milliseconds grace) {
  if (!kill_timer_) kill_timer_.emplace(io_);
  kill_timer_->expires_after(grace);
  kill_timer_->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!ec && self) self->signal_all(SIGKILL, false);
  });
}

void node_impl::maybe_reraise_sigint() {
  if (!reraise_pending_.load()) return;
  {
    std::lock_guard lock{table_mutex_};
    if (!table_.empty()) return;
  }
  if (!runtime_dir_.empty()) remove_runtime_dir(runtime_dir_);
  std::fflush(nullptr);
  if (!reraise_pending_.exchange(false)) return;  // a caller took it meanwhile
  ::signal(SIGINT, SIG_DFL);
  ::kill(::getpid(), SIGINT);
}

// ---- shutdown ---------------------------------------------------------------------------

void node_impl::signal_all(int sig, bool daemons_only) {
  auto states = snapshot();
  for (auto& s : states) {
    std::lock_guard lock{s->mutex};
    if (s->exitcode || !s->pidfd || (daemons_only && !s->daemon)) continue;
    pidfd_signal(s->pidfd.get(), sig);
  }
}

void node_impl::wait_all(std::chrono::steady_clock::time_point until, bool daemons_only) {
  auto states = snapshot();
  for (auto& s : states) {
    std::unique_lock lock{s->mutex};
    if (daemons_only && !s->daemon) continue;
    s->changed.wait_until(lock, until, [&] { return s->exitcode.has_value(); });
  }
}

void node_impl::shutdown() noexcept {
  if (shut_down_) return;
  shut_down_ = true;
  closing_ = true;
  if (io_running_) {
    auto grace = options_.kill_grace;
    // Daemons: terminate, then kill what is left after the grace period (Python's order).
    signal_all(SIGTERM, true);
    wait_all(std::chrono::steady_clock::now() + grace, true);
    signal_all(SIGKILL, true);
    wait_all(std::chrono::steady_clock::time_point::max(), true);
    // Everybody else is joined; a SIGINT meanwhile terminates them (on_sigint).
    wait_all(std::chrono::steady_clock::time_point::max(), false);
  }
  if (io_running_) {
    fork_gate_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }
  forkserver_watch_.reset();  // holds a dup of the server's socket: close it before expecting EOF
  if (sigint_installed_) ::sigaction(SIGINT, &previous_sigint_, nullptr);
  sigint_watch_.reset();
  kill_timer_.reset();
  {
    std::lock_guard lock{forkserver_write_};
    forkserver_sock_.reset();  // EOF: the server exits
  }
  if (forkserver_pid_ > 0 && !forkserver_reaped_) {
    int status;
    while (::waitpid(forkserver_pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  remove_runtime_dir(runtime_dir_);
}

std::vector<pid_t> node_impl::active_children() const {
  auto states = snapshot();
  std::vector<pid_t> pids;
  for (auto& s : states) {
    std::lock_guard lock{s->mutex};
    if (!s->exitcode && s->pidfd && !pidfd_exited(s->pidfd.get())) pids.push_back(s->pid);
  }
  return pids;
}

}  // namespace detail

// ---- node -------------------------------------------------------------------------------

void maybe_run_child() { detail::run_role_from_environment(); }

node::node() : node(node_options{}) {}
node::node(int argc, char** argv) : node(argc, argv, node_options{}) {}
node::node(int, char**, node_options options) : node(std::move(options)) {}

node::node(node_options options) {
  detail::run_role_from_environment();  // an exec'd child or fork server never returns from here
  if (detail::current_node() != nullptr)
    throw error(errc::invalid_argument, "mproc::node: only one node may exist per process");
  impl_ = std::make_shared<detail::node_impl>(std::move(options), false, "");
  std::error_code ec;
  impl_->open(ec);
  throw_if(ec, "mproc::node");
  detail::set_current_node(this);
}

node::node(std::shared_ptr<detail::node_impl> impl) : impl_(std::move(impl)) { detail::set_current_node(this); }

namespace detail {
namespace {
std::mutex& shutdown_hooks_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::function<void()>>& shutdown_hooks() {
  static std::vector<std::function<void()>> hooks;
  return hooks;
}
// Every fork child's node takes the mutex when it ends, so the forking thread holds it across
// every fork (hold_across_fork.hpp). Taking it for a fork cannot deadlock: its holders only
// append a hook or swap the list out; the hooks run after it is released.
[[maybe_unused]] const bool shutdown_hooks_held = (hold_across_fork(shutdown_hooks_mutex()), true);
}  // namespace

void at_node_shutdown(std::function<void()> hook) {
  std::lock_guard lock{shutdown_hooks_mutex()};
  shutdown_hooks().push_back(std::move(hook));
}
}  // namespace detail

node::~node() {
  if (detail::current_node() == this) {
    std::vector<std::function<void()>> hooks;
    {
      std::lock_guard lock{detail::shutdown_hooks_mutex()};
      hooks.swap(detail::shutdown_hooks());
    }
    for (auto it = hooks.rbegin(); it != hooks.rend(); ++it) (*it)();
  }
  impl_->shutdown();
  detail::shutdown_mailboxes();  // after the children are gone: they may use our queues until then
  if (detail::current_node() == this) detail::set_current_node(nullptr);
}

node& node::current() {
  node* n = detail::current_node();
  if (n == nullptr) throw error(errc::no_node, "mproc::node::current");
  return *n;
}

node* node::current_or_null() noexcept { return detail::current_node(); }

const node_options& node::options() const noexcept { return impl_->options(); }

const std::filesystem::path& node::runtime_dir() {
  std::error_code ec;
  const auto& dir = impl_->runtime_dir(ec);
  throw_if(ec, "mproc::node::runtime_dir");
  return dir;
}

std::vector<pid_t> node::active_children() const { return impl_->active_children(); }
pid_t node::forkserver_pid() const noexcept { return impl_->forkserver_pid(); }

}  // namespace mproc
