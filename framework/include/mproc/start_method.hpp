// mproc/start_method.hpp — how a new OS process comes to life (Python's start methods).
#pragma once

#include <string_view>

namespace mproc {

/// Thread safety: a plain enum.
enum class start_method {
  /// Default. A fork server, forked from the node before any thread exists, forks each child.
  /// Safe when the program runs threads. Needs a registered entry (MPROC_ENTRY). If the node is
  /// created when the program already runs threads, the server starts as a fresh image of the
  /// program instead (as Python's forkserver does).
  forkserver,
  /// posix_spawn of the program itself (/proc/self/exe) with an entry-point name: a fresh image.
  /// Safe with threads; slowest; needs a registered entry.
  spawn,
  /// fork() of the calling process. Allows capturing lambdas and any state. UNSAFE when the
  /// program runs other threads (locks held by them stay locked forever in the child).
  fork,
};

constexpr std::string_view to_string(start_method m) noexcept {
  switch (m) {
    case start_method::forkserver: return "forkserver";
    case start_method::spawn: return "spawn";
    case start_method::fork: return "fork";
  }
  return "?";
}

}  // namespace mproc
