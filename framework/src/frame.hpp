// Internal: frames on a node<->child channel (a SOCK_STREAM socketpair per child).
//
// header: u32 magic "MPRC" | u16 version | u16 kind | u64 payload length, then the payload.
// A reader checks magic, version, kind and a length cap before allocating, so garbage or a peer
// from another mproc version yields errc::bad_message instead of a misread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "fd.hpp"
#include "mproc/process.hpp"
#include "mproc/serialization.hpp"

namespace mproc {
template <class F>
void inspect(F& f, remote_exception& x) {
  f(x.type, x.message);
}
}  // namespace mproc

namespace mproc::detail {

enum class frame_kind : std::uint16_t { start = 1, exception = 2 };

constexpr std::uint32_t frame_magic = 0x4350524D;  // "MPRC" little-endian
constexpr std::uint16_t frame_version = 1;
constexpr std::uint64_t max_frame_payload = std::uint64_t{1} << 32;

struct frame {
  frame_kind kind;
  std::vector<std::byte> payload;
};

/// `fds` (at most 64) travel with the header (SCM_RIGHTS): a start message's pipe ends.
void write_frame(int fd, frame_kind kind, const std::vector<std::byte>& payload, std::span<const int> fds,
                 std::error_code& ec) noexcept;
inline void write_frame(int fd, frame_kind kind, const std::vector<std::byte>& payload, std::error_code& ec) noexcept {
  write_frame(fd, kind, payload, {}, ec);
}
/// Returns false on clean EOF (ec clear) or on error (ec set). Descriptors that came with the
/// frame are appended to `fds` (CLOEXEC).
bool read_frame(int fd, frame& out, std::vector<unique_fd>& fds, std::error_code& ec) noexcept;
inline bool read_frame(int fd, frame& out, std::error_code& ec) noexcept {
  std::vector<unique_fd> ignored;
  return read_frame(fd, out, ignored, ec);
}
/// Decodes frames from an in-memory buffer (what a non-blocking drain collected).
/// Returns the frames it could decode; sets ec on garbage or a truncated tail.
std::vector<frame> parse_frames(const std::vector<std::byte>& bytes, std::error_code& ec);

/// What the node tells a child started by forkserver or spawn.
struct start_message {
  std::uint8_t kind = 0;        // entry_kind
  std::string entry;            // registered name
  std::vector<std::byte> args;  // encoded arguments, or the encoded process object
  std::string name;             // process name
  bool daemon = false;
  std::int32_t parent_pid = 0;  // the node's pid (the logical parent)
  std::uint8_t method = 0;      // the node's default start method, inherited by the child's node
  std::string identity;         // "3" for process-3, "3:1" for its first child, ...
  std::string runtime_root;     // the node's node_options::runtime_root, inherited likewise
  std::int64_t kill_grace_ms = 1000;  // and its kill_grace
};

template <class F>
void inspect(F& f, start_message& x) {
  f(x.kind, x.entry, x.args, x.name, x.daemon, x.parent_pid, x.method, x.identity, x.runtime_root, x.kill_grace_ms);
}

}  // namespace mproc::detail
