// Internal: the node's private runtime directory.
//
// Layout: <root>/node-<pid>-<starttime>/ with <root> one of $MPROC_RUNTIME_DIR,
// $XDG_RUNTIME_DIR/mproc, /tmp/mproc-<uid>. Root and node directories are 0700 and must be owned
// by us and not be symlinks (another user could otherwise plant one). The pid *and* the
// process start time name a directory, so a directory left by a crashed node is recognised as
// stale even when its pid has been reused, and is removed by the next node that starts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <system_error>

namespace mproc::detail {

std::filesystem::path runtime_root(const std::filesystem::path& configured);
std::filesystem::path create_runtime_dir(const std::filesystem::path& root, std::error_code& ec);
/// Removes node directories under `root` whose process no longer exists; returns how many.
int reclaim_stale_runtime_dirs(const std::filesystem::path& root) noexcept;
/// Removes `dir` and everything in it, even while other threads unlink entries of their own.
void remove_runtime_dir(const std::filesystem::path& dir) noexcept;
/// The kernel's start time (clock ticks since boot) of `pid`, 0 if it does not exist.
std::uint64_t process_start_time(pid_t pid) noexcept;

}  // namespace mproc::detail
