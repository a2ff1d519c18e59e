// The life of a child process: learn who we are, run the user's code, report an escaping
// exception, wait for our own children, exit with Python's exit code.
#include <cxxabi.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "bootstrap.hpp"
#include "frame.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/current_process.hpp"
#include "mproc/semaphore.hpp"
#include "node_impl.hpp"

namespace mproc {
namespace detail {
namespace {

// Written once, before the user's code runs in this process (so before any thread of theirs),
// read-only afterwards: no lock, which also keeps a forked child clear of inherited locks.
std::optional<child_setup> self;  // nullopt in the program's first process ("MainProcess")

constexpr std::size_t max_reported_message = 64 * 1024;

/// Prints the exception like Python's "Process process-1:" block and sends it to the parent.
void report(int channel, const std::string& name, remote_exception e) {
  if (e.message.size() > max_reported_message) e.message.resize(max_reported_message);
  std::cerr.flush();
  std::fprintf(stderr, "Process %s:\n%s: %s\n", name.c_str(), e.type.c_str(), e.message.c_str());
  std::fflush(stderr);
  std::error_code ec;
  write_frame(channel, frame_kind::exception, to_bytes(e), ec);  // parent gone: nothing to tell
}


[[noreturn]] void run_child(int channel, const child_setup& setup, const std::function<void()>& body) {
  set_self(setup);
  set_current_node(nullptr);  // a forked image may still point at its parent's node
  int code = 0;
  {
    node_options opts;
    opts.method = setup.method;
    opts.runtime_root = setup.runtime_root;
    opts.kill_grace = setup.kill_grace;
    opts.handle_sigint = false;  // a child dies of Ctrl-C like Python's children do
    node child_node = node_access::make(std::make_shared<node_impl>(opts, true, setup.identity));
    try {
      body();
    } catch (...) {
      report(channel, setup.name, current_exception_info());
      code = 1;
    }
  }  // the child's own node joins its non-daemon children and terminates its daemons here
  mproc::semaphore::keep_units_of_this_process();  // it ended normally: it did not die holding
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  // _exit, not exit: the image's static objects belong to the parent's program state (a fork
  // server or a forked copy); running their destructors here would act on the parent's behalf.
  ::_exit(code);
}

}  // namespace

remote_exception current_exception_info() {
  try {
    throw;
  } catch (const std::exception& e) {
    return {demangle(typeid(e).name()), e.what()};
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return {t != nullptr ? demangle(t->name()) : "unknown", ""};
  }
}

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> d{abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free};
  return status == 0 && d ? std::string{d.get()} : std::string{mangled};
}

void set_self(const child_setup& setup) { self = setup; }

void die_with_parent(pid_t expected_parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != expected_parent) ::_exit(128 + SIGKILL);
}

void run_child_from_channel(int channel) {
  frame f;
  std::error_code ec;
  std::vector<unique_fd> received;  // pipe ends among the arguments
  if (!read_frame(channel, f, received, ec) || f.kind != frame_kind::start) {
    std::fprintf(stderr, "mproc child %d: no start message from the node (%s)\n", ::getpid(),
                 ec ? ec.message().c_str() : "end of stream");
    ::_exit(1);
  }
  start_message m;
  child_setup setup;
  try {
    m = from_bytes<start_message>(f.payload.data(), f.payload.size());
  } catch (...) {
    report(channel, "?", current_exception_info());
    ::_exit(1);
  }
  setup.name = m.name;
  setup.daemon = m.daemon;
  setup.parent_pid = m.parent_pid;
  setup.method = static_cast<start_method>(m.method);
  setup.identity = m.identity;
  setup.runtime_root = m.runtime_root;
  setup.kill_grace = std::chrono::milliseconds{m.kill_grace_ms};
  run_child(channel, setup, [&] {
    if (m.entry.empty()) return;  // a plain process without target: nothing to run
    const entry_info* e = find_entry_by_name(static_cast<entry_kind>(m.kind), m.entry);
    if (e == nullptr) throw error(errc::unknown_entry, "entry '" + m.entry + "' is not registered in this image");
    fd_set_owned fds;
    for (auto& fd : received) fds.adopt(fd.release());
    transfer_in transfer{fds};  // decoding the arguments takes the descriptors by index
    e->invoke(e->fn, m.args);
  });
}

void run_forked_child(int channel, const child_setup& setup, const std::function<void()>& body) {
  run_child(channel, setup, body);
}

void run_role_from_environment() {
  const char* role = std::getenv(role_env);
  if (role == nullptr) return;
  std::string r = role;
  int fd = std::atoi(std::getenv(fd_env) != nullptr ? std::getenv(fd_env) : "-1");
  pid_t parent = std::atoi(std::getenv(parent_env) != nullptr ? std::getenv(parent_env) : "0");
  ::unsetenv(role_env);
  ::unsetenv(fd_env);
  ::unsetenv(parent_env);
  if (fd < 0) {
    std::fprintf(stderr, "mproc: %s=%s without %s\n", role_env, role, fd_env);
    ::_exit(1);
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // dup2 in posix_spawn cleared it; our own children must not inherit it
  die_with_parent(parent);
  if (r == "forkserver") run_forkserver(fd, parent);
  if (r == "child") run_child_from_channel(fd);
  std::fprintf(stderr, "mproc: unknown role '%s'\n", r.c_str());
  ::_exit(1);
}

}  // namespace detail

process_info current_process() {
  if (!detail::self) return {"MainProcess", ::getpid(), ::getppid(), false};
  return {detail::self->name, ::getpid(), detail::self->parent_pid, detail::self->daemon};
}

pid_t parent_pid() { return current_process().parent_pid; }

}  // namespace mproc
