#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "../fd.hpp"
#include "launch.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/subprocess.hpp"

namespace mproc::detail {

/// One of our read ends (stdout or stderr) with the bytes read but not yet handed out.
struct pipe_reader {
  unique_fd fd;  // reset at end of file
  std::string buffer;
  bool piped = false;
};

struct popen_state {
  std::vector<std::string> args;
  pid_t pid = 0;
  unique_fd pidfd;
  bool group = false;  // the command leads a process group of its own: signal the group
  unique_fd in;  // our end of the command's stdin; reset once closed
  bool in_piped = false;
  pipe_reader out, err;

  mutable std::mutex mutex;  // guards returncode (reaping) against signals from other threads
  std::optional<int> returncode;
};

struct popen_access {
  static subprocess::popen start(std::vector<std::string> argv, const subprocess::options& opts,
                                 std::error_code& ec, std::string& context);
};

namespace {

using subprocess::stream;
constexpr std::size_t chunk = 64 * 1024;

bool passed(deadline until) { return until != forever && std::chrono::steady_clock::now() >= until; }

/// poll(2) on one descriptor until it is ready or the deadline passes; false on timeout.
bool ready_within(int fd, short events, deadline until) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, poll_timeout_ms(until));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // let the following read/write report the error
  }
}

/// Keeps SIGPIPE from killing the program while this thread writes to a command that may have
/// closed its stdin: blocked for the scope, and a SIGPIPE our writes caused is taken away.
class sigpipe_blocked {
 public:
  sigpipe_blocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~sigpipe_blocked() {
    if (!was_pending_) {
      timespec zero{};
      while (::sigtimedwait(&pipe_, nullptr, &zero) > 0) {}
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocked(const sigpipe_blocked&) = delete;
  sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

/// One read of what is there; false at end of file or on an error (ec set).
bool read_once(int fd, std::string& to, std::error_code& ec) {
  auto old = to.size();
  to.resize(old + chunk);
  ssize_t n;
  do n = ::read(fd, to.data() + old, chunk);
  while (n < 0 && errno == EINTR);
  to.resize(old + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0 && errno == EAGAIN) return true;
  if (n < 0) ec = last_error();
  return n > 0;
}

/// One non-blocking write; the bytes written (0 when the pipe is full), or ec set
/// (errc::end_of_stream when the command closed its stdin).
std::size_t write_once(int fd, std::string_view bytes, std::error_code& ec) {
  ssize_t n;
  do n = ::write(fd, bytes.data(), std::min(bytes.size(), chunk));
  while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<std::size_t>(n);
  if (errno == EAGAIN) return 0;
  ec = errno == EPIPE ? make_error_code(errc::end_of_stream) : last_error();
  return 0;
}

/// Reaps the command if it has exited (never blocks), under the state's mutex.
std::optional<int> reap_now(popen_state& s) {
  std::lock_guard lock{s.mutex};
  if (s.returncode) return s.returncode;
  std::error_code ec;
  auto code = reap_pidfd(s.pidfd.get(), false, ec);
  if (ec) code = 255;  // someone else's waitpid(-1) took the status: it has exited, code unknown
  if (code) s.returncode = code;
  return s.returncode;
}

/// Waits (pidfd readable) and reaps; nullopt when the deadline passed first.
std::optional<int> wait_until(popen_state& s, deadline until) {
  for (;;) {
    if (auto code = reap_now(s)) return code;
    if (!ready_within(s.pidfd.get(), POLLIN, until)) return reap_now(s);
  }
}

void send_signal_to(popen_state& s, int sig) {
  std::lock_guard lock{s.mutex};
  if (s.returncode) return;
  // The leader is not reaped yet, so its pid is still its group's id: no recycled group.
  if (s.group) ::kill(-s.pid, sig);
  else pidfd_signal(s.pidfd.get(), sig);  // ESRCH before the reap is harmless
}

int kill_and_reap(popen_state& s) {
  send_signal_to(s, SIGKILL);
  return *wait_until(s, forever);
}

std::optional<std::string> read_line(pipe_reader& r, deadline until, std::error_code& ec) {
  ec.clear();
  if (!r.piped) return ec = make_error_code(errc::invalid_argument), std::nullopt;
  std::size_t scanned = 0;
  for (;;) {
    auto nl = r.buffer.find('\n', scanned);
    if (nl != std::string::npos) {
      std::string line = r.buffer.substr(0, nl + 1);
      r.buffer.erase(0, nl + 1);
      return line;
    }
    scanned = r.buffer.size();
    if (!r.fd) {
      if (r.buffer.empty()) return std::nullopt;
      return std::exchange(r.buffer, {});
    }
    // Checked before each read too: a stream that never ends a line must not outlast the deadline.
    if (passed(until) || !ready_within(r.fd.get(), POLLIN, until))
      return ec = make_error_code(errc::timeout), std::nullopt;
    if (!read_once(r.fd.get(), r.buffer, ec)) {
      if (ec) return std::nullopt;
      r.fd.reset();
    }
  }
}

/// Our end of a new pipe for stream `index` (0 = stdin) and the command's end, both >= 3.
std::pair<unique_fd, unique_fd> make_stdio_pipe(int index, std::error_code& ec) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ec = last_error(), std::pair<unique_fd, unique_fd>{};
  unique_fd read_end{fds[0]}, write_end{fds[1]};
  auto ours = above_stdio(std::move(index == 0 ? write_end : read_end), ec);
  if (ec) return {};
  auto theirs = above_stdio(std::move(index == 0 ? read_end : write_end), ec);
  if (ec) return {};
  ::fcntl(ours.get(), F_SETFL, ::fcntl(ours.get(), F_GETFL) | O_NONBLOCK);
  return {std::move(ours), std::move(theirs)};
}

/// The rest of communicate() once stdin is written or closed: reads stdout and stderr to end
/// of file (writing stdin meanwhile), waits for the exit. On timeout: kill, reap, errc::timeout.
void pump_all(popen_state& s, std::string_view input, deadline until, subprocess::completed& r, std::error_code& ec) {
  sigpipe_blocked guard;
  std::size_t written = 0;
  pipe_reader* readers[2] = {&s.out, &s.err};
  std::string* sinks[2] = {&r.stdout_bytes, &r.stderr_bytes};
  for (;;) {
    pollfd fds[3];
    int n = 0;
    if (s.in) fds[n++] = {s.in.get(), POLLOUT, 0};
    for (auto* reader : readers)
      if (reader->fd) fds[n++] = {reader->fd.get(), POLLIN, 0};
    if (n == 0) break;
    int rc = ::poll(fds, static_cast<nfds_t>(n), poll_timeout_ms(until));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return void(ec = last_error());
    if (rc == 0 || passed(until)) {  // also a command that never stops writing ends at the deadline
      r.returncode = kill_and_reap(s);
      return void(ec = make_error_code(errc::timeout));
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (s.in && fds[i].fd == s.in.get()) {
        std::error_code write_ec;  // a command that stops reading is not an error (as in Python)
        written += write_once(s.in.get(), input.substr(written), write_ec);
        if (write_ec || written == input.size()) s.in.reset();
        continue;
      }
      for (int k = 0; k < 2; ++k) {
        if (!readers[k]->fd || fds[i].fd != readers[k]->fd.get()) continue;
        if (!read_once(readers[k]->fd.get(), *sinks[k], ec)) readers[k]->fd.reset();
        if (ec) return;
      }
    }
  }
  if (auto code = wait_until(s, until)) return void(r.returncode = *code);
  r.returncode = kill_and_reap(s);
  ec = make_error_code(errc::timeout);
}

}  // namespace

subprocess::popen popen_access::start(std::vector<std::string> argv, const subprocess::options& opts,
                                      std::error_code& ec, std::string& context) {
  subprocess::popen p;
  launch_request req;
  req.argv = std::move(argv);
  prepare_launch(req, opts, ec, context);
  if (ec) return p;
  if (opts.stdin_mode == stream::to_stdout || opts.stdout_mode == stream::to_stdout) {
    context = "stream::to_stdout is for stderr only";
    return ec = make_error_code(errc::invalid_argument), std::move(p);
  }
  auto s = std::make_unique<popen_state>();
  const stream modes[3] = {opts.stdin_mode, opts.stdout_mode, opts.stderr_mode};
  unique_fd theirs[3];  // the command's ends, closed here once it has started
  unique_fd devnull;
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == stream::pipe) {
      auto [ours, their_end] = make_stdio_pipe(i, ec);
      if (ec) return context = "pipe", std::move(p);
      theirs[i] = std::move(their_end);
      req.stdio[i] = theirs[i].get();
      (i == 0 ? s->in : i == 1 ? s->out.fd : s->err.fd) = std::move(ours);
    } else if (modes[i] == stream::null) {
      if (!devnull) devnull = above_stdio(unique_fd{::open("/dev/null", O_RDWR | O_CLOEXEC)}, ec);
      if (ec || !devnull) return ec = ec ? ec : last_error(), context = "/dev/null", std::move(p);
      req.stdio[i] = devnull.get();
    } else if (modes[i] == stream::to_stdout) {
      req.stdio[i] = launch_request::same_as_stdout;
    }
  }
  s->in_piped = modes[0] == stream::pipe;
  s->out.piped = modes[1] == stream::pipe;
  s->err.piped = modes[2] == stream::pipe;
  auto started = launch(req, ec, context);
  if (ec) return p;
  s->pid = started.pid;
  s->pidfd = std::move(started.pidfd);
  s->group = opts.new_process_group;
  s->args = std::move(req.argv);
  p.state_ = std::move(s);
  return p;
}

}  // namespace mproc::detail

namespace mproc::subprocess {

using mproc::detail::popen_access;
using mproc::detail::popen_state;

namespace {

popen_state& state_or_throw(const std::unique_ptr<popen_state>& s) {
  if (!s) throw error(errc::invalid_argument, "mproc::subprocess::popen: empty handle");
  return *s;
}

std::string what_of(const std::vector<std::string>& args, const char* call) {
  return std::string{"mproc::subprocess::"} + call + (args.empty() ? std::string{} : " " + args.front());
}

}  // namespace

// ---- popen ---------------------------------------------------------------------------------

popen::popen(std::vector<std::string> argv, options opts) {
  std::error_code ec;
  std::string context;
  auto what = what_of(argv, "popen");
  *this = popen_access::start(std::move(argv), opts, ec, context);
  throw_if(ec, what + ": " + context);
}

popen::popen(std::vector<std::string> argv, const options& opts, std::error_code& ec) {
  std::string context;
  *this = popen_access::start(std::move(argv), opts, ec, context);
}

popen::popen() noexcept = default;
popen::popen(popen&&) noexcept = default;

popen& popen::operator=(popen&& o) noexcept {
  if (this != &o) {
    if (state_ && !state_->returncode) mproc::detail::kill_and_reap(*state_);
    state_ = std::move(o.state_);
  }
  return *this;
}

popen::~popen() {
  if (state_ && !state_->returncode) mproc::detail::kill_and_reap(*state_);
}

const std::vector<std::string>& popen::args() const { return state_or_throw(state_).args; }
pid_t popen::pid() const noexcept { return state_ ? state_->pid : 0; }

std::optional<int> popen::returncode() const {
  if (!state_) return std::nullopt;
  std::lock_guard lock{state_->mutex};
  return state_->returncode;
}

std::optional<int> popen::poll() { return mproc::detail::reap_now(state_or_throw(state_)); }
int popen::wait() { return *mproc::detail::wait_until(state_or_throw(state_), mproc::detail::forever); }
std::optional<int> popen::wait(duration timeout) {
  return mproc::detail::wait_until(state_or_throw(state_), mproc::detail::deadline_after(timeout));
}

void popen::send_signal(int sig) { mproc::detail::send_signal_to(state_or_throw(state_), sig); }

completed popen::communicate(std::string_view input, duration timeout) {
  std::error_code ec;
  auto r = communicate(input, timeout, ec);
  throw_if(ec, what_of(r.args, "popen::communicate"));
  return r;
}

completed popen::communicate(std::string_view input, duration timeout, std::error_code& ec) {
  ec.clear();
  completed r;
  if (!state_) return ec = make_error_code(errc::invalid_argument), r;
  auto& s = *state_;
  r.args = s.args;
  if (!input.empty() && !s.in) return ec = make_error_code(errc::invalid_argument), r;
  if (input.empty()) s.in.reset();
  r.stdout_bytes = std::exchange(s.out.buffer, {});  // what read_*_line read ahead comes first
  r.stderr_bytes = std::exchange(s.err.buffer, {});
  mproc::detail::pump_all(s, input, mproc::detail::deadline_after(timeout), r, ec);
  return r;
}

void popen::write_stdin(std::string_view bytes) {
  std::error_code ec;
  write_stdin(bytes, ec);
  throw_if(ec, what_of(args(), "popen::write_stdin"));
}

void popen::write_stdin(std::string_view bytes, std::error_code& ec) { write_stdin(bytes, duration::max(), ec); }

std::size_t popen::write_stdin(std::string_view bytes, duration timeout, std::error_code& ec) {
  ec.clear();
  if (!state_ || !state_->in) return ec = make_error_code(errc::invalid_argument), 0;
  int fd = state_->in.get();
  auto until = mproc::detail::deadline_after(timeout);
  mproc::detail::sigpipe_blocked guard;
  std::size_t done = 0;
  while (done < bytes.size() && !ec) {
    std::size_t n = mproc::detail::write_once(fd, bytes.substr(done), ec);
    done += n;
    if (n == 0 && !ec && !mproc::detail::ready_within(fd, POLLOUT, until)) ec = make_error_code(errc::timeout);
  }
  return done;
}

void popen::close_stdin() noexcept {
  if (state_) state_->in.reset();
}

namespace {

using reader_of = mproc::detail::pipe_reader popen_state::*;  // &popen_state::out or ::err

std::optional<std::string> read_line_of(const std::unique_ptr<popen_state>& s, reader_of which, duration timeout,
                                        std::error_code& ec) {
  if (!s) return ec = make_error_code(errc::invalid_argument), std::nullopt;
  return mproc::detail::read_line((*s).*which, mproc::detail::deadline_after(timeout), ec);
}

std::optional<std::string> read_line_or_throw(const std::unique_ptr<popen_state>& s, reader_of which,
                                              duration timeout, const char* call) {
  std::error_code ec;
  auto line = read_line_of(s, which, timeout, ec);
  throw_if(ec, what_of(s ? s->args : std::vector<std::string>{}, call));
  return line;
}

}  // namespace

std::optional<std::string> popen::read_stdout_line(duration timeout) {
  return read_line_or_throw(state_, &popen_state::out, timeout, "popen::read_stdout_line");
}
std::optional<std::string> popen::read_stdout_line(duration timeout, std::error_code& ec) {
  return read_line_of(state_, &popen_state::out, timeout, ec);
}
std::optional<std::string> popen::read_stderr_line(duration timeout) {
  return read_line_or_throw(state_, &popen_state::err, timeout, "popen::read_stderr_line");
}
std::optional<std::string> popen::read_stderr_line(duration timeout, std::error_code& ec) {
  return read_line_of(state_, &popen_state::err, timeout, ec);
}

void popen::for_each_stdout_line(const std::function<void(std::string&&)>& on_line, std::stop_token stop,
                                 std::error_code& ec) {
  constexpr auto slice = std::chrono::milliseconds(100);  // how soon a stop request is seen
  while (!stop.stop_requested()) {
    auto line = read_stdout_line(slice, ec);
    if (ec == errc::timeout) continue;
    if (!line) return;
    if (line->ends_with('\n')) line->pop_back();
    on_line(std::move(*line));
  }
  ec.clear();
}

int popen::stdin_fd() const noexcept { return state_ ? state_->in.get() : -1; }
int popen::stdout_fd() const noexcept { return state_ ? state_->out.fd.get() : -1; }
int popen::stderr_fd() const noexcept { return state_ ? state_->err.fd.get() : -1; }

// ---- run -----------------------------------------------------------------------------------

called_process_error::called_process_error(completed result, const std::string& context)
    : error(errc::command_failed, context + ": exit status " + std::to_string(result.returncode)),
      result_(std::move(result)) {}

namespace {

completed run_with_context(std::vector<std::string> argv, const run_options& opts, std::error_code& ec,
                           std::string& context) {
  options o = opts;
  if (opts.input) o.stdin_mode = stream::pipe;
  if (opts.capture) o.stdout_mode = o.stderr_mode = stream::pipe;
  completed r;
  r.args = argv;
  auto p = popen_access::start(std::move(argv), o, ec, context);
  if (ec) return r;
  r = p.communicate(opts.input ? std::string_view{*opts.input} : std::string_view{}, opts.timeout, ec);
  if (ec == errc::timeout) context = "timed out, killed";
  if (!ec && opts.check && r.returncode != 0) ec = make_error_code(errc::command_failed);
  return r;
}

}  // namespace

completed run(std::vector<std::string> argv, const run_options& opts, std::error_code& ec) {
  std::string context;
  return run_with_context(std::move(argv), opts, ec, context);
}

completed run(std::vector<std::string> argv, run_options opts) {
  std::error_code ec;
  std::string context;
  auto what = what_of(argv, "run");
  auto r = run_with_context(std::move(argv), opts, ec, context);
  if (ec == errc::command_failed) throw called_process_error(std::move(r), what);
  throw_if(ec, context.empty() ? what : what + ": " + context);
  return r;
}

}  // namespace mproc::subprocess
