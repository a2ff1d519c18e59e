// Internal: what runs in a new process before (and after) the user's code.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include "mproc/node.hpp"
#include "mproc/process.hpp"
#include "mproc/start_method.hpp"

namespace mproc::detail {

/// Environment variables by which an exec'd image of the program learns its role. They are
/// removed from the environment as soon as they are read, so grandchildren never see them.
inline constexpr const char* role_env = "MPROC_ROLE";          // "child" | "forkserver"
inline constexpr const char* fd_env = "MPROC_FD";              // the inherited channel/socket
inline constexpr const char* parent_env = "MPROC_PARENT_PID";  // pid the image must die with

/// Who this process is, as current_process() reports it.
struct child_setup {
  std::string name;
  bool daemon = false;
  pid_t parent_pid = 0;
  start_method method = start_method::forkserver;
  std::string identity;
  // The parent node's options the child's node inherits (with its method).
  std::filesystem::path runtime_root;
  std::chrono::milliseconds kill_grace{1000};
};

/// Called first thing by node's constructor: when this image was exec'd as a child or fork
/// server, runs that role and never returns.
void run_role_from_environment();

/// Dies with the parent: PR_SET_PDEATHSIG(SIGKILL), then exits at once if the parent is
/// already gone (the race prctl alone leaves open).
void die_with_parent(pid_t expected_parent) noexcept;

/// Child of the fork server or of posix_spawn: reads the start message from `channel`, runs
/// the registered entry, reports an escaping exception, exits with the Python exit code.
[[noreturn]] void run_child_from_channel(int channel);

/// Child of fork(): runs `body` (the parent's object, copied by fork) under the same rules.
[[noreturn]] void run_forked_child(int channel, const child_setup& setup, const std::function<void()>& body);

/// The fork server's loop (forkserver.cpp).
[[noreturn]] void run_forkserver(int sock, pid_t node_pid);

/// Process-wide "who am I" for current_process().
void set_self(const child_setup& setup);

std::string demangle(const char* mangled);
/// The type and message of the exception being handled (call inside a catch block).
remote_exception current_exception_info();

struct node_access {
  static node make(std::shared_ptr<node_impl> impl) { return node{std::move(impl)}; }
};

}  // namespace mproc::detail
