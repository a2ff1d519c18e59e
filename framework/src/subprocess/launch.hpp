// Internal: starting an external command (vfork + exec) so that it dies with this program and
// its exec failure comes back typed.
#pragma once

#include <sys/types.h>

#include <string>
#include <system_error>
#include <vector>

#include "../fd.hpp"
#include "mproc/subprocess.hpp"

namespace mproc::detail {

/// Everything the child needs, prepared in the parent: after vfork() the child may only make
/// async-signal-safe calls (no allocation), so nothing is computed there.
struct launch_request {
  std::vector<std::string> argv;
  std::vector<std::string> env;         // "KEY=value"
  std::vector<std::string> candidates;  // paths to try with execve, in order (PATH search)
  std::string cwd;                      // empty: ours
  bool new_process_group = false;       // setpgid(0, 0) before exec
  /// The descriptor each of stdin, stdout, stderr becomes; -1 inherits ours; `same_as_stdout`
  /// (stderr only) makes it a copy of the command's stdout. Every one is >= 3 (see below).
  int stdio[3] = {-1, -1, -1};
  static constexpr int same_as_stdout = -2;
};

struct launched {
  pid_t pid = 0;
  unique_fd pidfd;
};

/// Builds the request's env and candidates from `opts` and argv. Fails with
/// errc::invalid_argument (empty argv, a NUL byte, a bad variable name).
void prepare_launch(launch_request& r, const subprocess::options& opts, std::error_code& ec, std::string& context);

/// vforks and execs on the launcher thread (PR_SET_PDEATHSIG follows the thread that forks, and
/// that one lives as long as the program). On failure the child, if any, is already reaped and
/// ec is command_not_found, access_denied or spawn_failed, with `context` saying what failed.
launched launch(const launch_request& r, std::error_code& ec, std::string& context);

/// `fd` moved to a number >= 3 (so that dup2 onto 0..2 in the child cannot clobber it), CLOEXEC.
unique_fd above_stdio(unique_fd fd, std::error_code& ec) noexcept;

}  // namespace mproc::detail
