#include "launch.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string_view>
#include <thread>

extern char** environ;

namespace mproc::detail {
namespace {

// ---- the launcher thread ------------------------------------------------------------------
//
// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process. A
// command forked by a caller's short-lived thread would die with that thread. So every command
// is forked by one launcher thread per process, started on first use and never stopped: the
// death signal then means "this program ended". The thread blocks every signal, so no handler
// of the program can run in a freshly forked child before it has reset its dispositions.

struct launcher {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  launcher* previous_generation = nullptr;  // a parent's launcher inherited by fork, kept reachable

  void run() {
    for (;;) {
      std::unique_lock lock{mutex};
      wake.wait(lock, [&] { return !jobs.empty(); });
      auto job = std::move(jobs.front());
      jobs.pop_front();
      lock.unlock();
      job();
    }
  }
};

std::atomic<launcher*> current_launcher{nullptr};
launcher* abandoned_launchers = nullptr;  // launchers of an ancestor process (their thread is gone)

void forget_launcher_in_child() {
  // The launcher's thread does not exist in a forked child; its mutex may even be held.
  if (auto* old = current_launcher.exchange(nullptr)) {
    old->previous_generation = abandoned_launchers;
    abandoned_launchers = old;
  }
}

launcher& the_launcher() {
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { ::pthread_atfork(nullptr, nullptr, &forget_launcher_in_child); });
  if (auto* l = current_launcher.load()) return *l;
  auto* fresh = new launcher;  // never deleted: its thread runs until the process ends
  launcher* expected = nullptr;
  if (!current_launcher.compare_exchange_strong(expected, fresh)) {
    delete fresh;
    return *expected;
  }
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);  // the new thread inherits "everything blocked"
  std::thread{[fresh] { fresh->run(); }}.detach();
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return *fresh;
}

void run_on_launcher(const std::function<void()>& f) {
  auto& l = the_launcher();
  std::promise<void> done;
  {
    std::lock_guard lock{l.mutex};
    l.jobs.emplace_back([&] {
      f();
      done.set_value();
    });
  }
  l.wake.notify_one();
  done.get_future().wait();
}

// ---- the child, between vfork and exec -----------------------------------------------------
//
// vfork, not fork: the child borrows our memory until it execs, so no page table is copied
// and no copy-on-write fault follows in the parent (run({"true"}) measured 0.52 ms with vfork,
// 0.7-3.5 ms with fork, Python 0.53-0.55 ms, in the same runs), and no fork handler runs (the
// node's fork gate does not park its I/O thread). The price is the rule the code below keeps: between vfork and exec
// only async-signal-safe system calls, nothing written to memory the parent uses, no return
// from this frame. Python's _posixsubprocess does the same. Signal dispositions are not shared
// (no CLONE_SIGHAND), so the child may reset its own.

struct exec_report {
  enum stage_t : int { exec = 1, chdir = 2, stdio = 3, parent_gone = 4 } stage;
  int error;
};

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

struct child_view {  // the request as plain C data: the child must not allocate
  char* const* argv;
  char* const* envp;
  char* const* candidates;
  const char* cwd;  // nullptr: ours
  const int* stdio;
  bool new_process_group;
  int report_fd;
  pid_t parent;
};

[[noreturn]] void report_and_exit(int report_fd, exec_report::stage_t stage, int error) {
  exec_report r{stage, error};
  ssize_t ignored = ::write(report_fd, &r, sizeof r);
  (void)ignored;
  ::_exit(127);
}

/// Async-signal-safe system calls only from here to execve (see above: vfork).
[[noreturn]] void become_command(const child_view& c) {
  // Handlers of this program must not run in the command; SIGPIPE and SIGXFSZ go back to their
  // defaults as Python's restore_signals does; other ignored signals stay ignored, as exec
  // keeps them.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_DFL) continue;
    if (old.sa_handler == SIG_IGN && sig != SIGPIPE && sig != SIGXFSZ) continue;
    ::sigaction(sig, &dfl, nullptr);
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != c.parent) report_and_exit(c.report_fd, exec_report::parent_gone, ESRCH);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  for (int target = 0; target < 3; ++target) {
    int from = c.stdio[target] == launch_request::same_as_stdout ? 1 : c.stdio[target];
    if (from >= 0 && ::dup2(from, target) < 0) report_and_exit(c.report_fd, exec_report::stdio, errno);
  }
  if (c.new_process_group && ::setpgid(0, 0) != 0) report_and_exit(c.report_fd, exec_report::stdio, errno);
  if (c.cwd != nullptr && ::chdir(c.cwd) != 0) report_and_exit(c.report_fd, exec_report::chdir, errno);
  // Only 0, 1, 2 reach the command (close_fds=True); the report pipe closes at exec.
  if (c.report_fd > 3) ::syscall(SYS_close_range, 3, c.report_fd - 1, 0);
  ::syscall(SYS_close_range, c.report_fd + 1, ~0U, 0);

  // execvpe's rules: try the next PATH entry after ENOENT/ENOTDIR; EACCES wins if nothing ran.
  int error = ENOENT;
  bool denied = false;
  for (char* const* path = c.candidates; *path != nullptr; ++path) {
    ::execve(*path, c.argv, c.envp);
    error = errno;
    if (error == EACCES) denied = true;
    else if (error != ENOENT && error != ENOTDIR) break;
  }
  report_and_exit(c.report_fd, exec_report::exec, denied && (error == ENOENT || error == ENOTDIR) ? EACCES : error);
}

std::string describe(int error) { return std::strerror(error); }

std::error_code code_for(const exec_report& r) {
  if (r.stage == exec_report::exec && (r.error == ENOENT || r.error == ENOTDIR))
    return make_error_code(errc::command_not_found);
  if (r.stage == exec_report::exec && (r.error == EACCES || r.error == EPERM))
    return make_error_code(errc::access_denied);
  return make_error_code(errc::spawn_failed);
}

std::string context_for(const exec_report& r, const launch_request& req) {
  switch (r.stage) {
    case exec_report::exec: return "exec " + req.argv.front() + ": " + describe(r.error);
    case exec_report::chdir: return "chdir " + req.cwd + ": " + describe(r.error);
    case exec_report::stdio: return "redirect stdin/stdout/stderr or setpgid: " + describe(r.error);
    case exec_report::parent_gone: return "the launching thread ended during the start";
  }
  return "start " + req.argv.front();
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

/// PATH candidates for argv[0] (the name itself when it has a '/').
std::vector<std::string> candidates_for(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return {name};
  std::string_view path = "/bin:/usr/bin";  // Python's os.defpath when the environment has none
  for (auto& e : env)
    if (e.starts_with("PATH=")) path = std::string_view{e}.substr(5);
  std::vector<std::string> out;
  for (;;) {
    auto colon = path.find(':');
    auto dir = path.substr(0, colon);
    out.push_back((dir.empty() ? std::string{"."} : std::string{dir}) + "/" + name);
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

}  // namespace

unique_fd above_stdio(unique_fd fd, std::error_code& ec) noexcept {
  ec.clear();
  if (fd.get() >= 3) return fd;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) ec = last_error();
  return unique_fd{moved};
}

void prepare_launch(launch_request& r, const subprocess::options& opts, std::error_code& ec, std::string& context) {
  ec = make_error_code(errc::invalid_argument);
  if (r.argv.empty() || r.argv.front().empty()) return void(context = "empty command");
  for (auto& a : r.argv)
    if (has_nul(a)) return void(context = "an argument contains a NUL byte");
  if (opts.inherit_env)
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) r.env.emplace_back(*e);
  for (const auto& variable : opts.env) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const std::string& name = variable.first;
    const std::string& value = variable.second;
    if (name.empty() || name.find('=') != std::string::npos || has_nul(name) || has_nul(value))
      return void(context = "bad environment variable name or value: " + name);
    std::erase_if(r.env, [&](const std::string& e) { return e.size() > name.size() && e.starts_with(name) && e[name.size()] == '='; });
    r.env.push_back(name + "=" + value);
  }
  if (has_nul(opts.cwd.native())) return void(context = "cwd contains a NUL byte");
  r.cwd = opts.cwd.native();
  r.new_process_group = opts.new_process_group;
  r.candidates = candidates_for(r.argv.front(), r.env);
  ec.clear();
}

launched launch(const launch_request& r, std::error_code& ec, std::string& context) {
  launched out;
  run_on_launcher([&] {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return void((ec = last_error(), context = "pipe"));
    unique_fd report_read{fds[0]};
    unique_fd report_write = above_stdio(unique_fd{fds[1]}, ec);
    if (ec) return void(context = "pipe");
    auto argv = c_strings(r.argv);
    auto envp = c_strings(r.env);
    auto candidates = c_strings(r.candidates);
    child_view view{argv.data(), envp.data(), candidates.data(), r.cwd.empty() ? nullptr : r.cwd.c_str(),
                    r.stdio, r.new_process_group, report_write.get(), ::getpid()};
    pid_t pid = ::vfork();
    if (pid == 0) become_command(view);
    if (pid < 0) return void((ec = make_error_code(errc::spawn_failed), context = "vfork: " + describe(errno)));
    report_write.reset();
    exec_report report{};
    ssize_t n;
    do n = ::read(report_read.get(), &report, sizeof report);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof report)) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}  // it has exited: reap exactly it
      ec = code_for(report);
      context = context_for(report, r);
      return;
    }
    out.pidfd.reset(pidfd_open(pid, ec));
    if (ec) {  // no handle could ever reap it: do it now
      context = "pidfd_open: " + ec.message();
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      return;
    }
    out.pid = pid;
  });
  return out;
}

}  // namespace mproc::detail
