// mproc/detail/pipe_core.hpp — the untyped end of a pipe: one connected Unix stream socket.
//
// A message is one data frame (mproc/detail/wire.hpp) carrying one record, written with one
// syscall: a pipe is for round trips, so nothing waits to be batched.
//
// Thread safety: send and receive each serialize their callers (a frame is never interleaved
// with another); close from any thread. Destructor: closes the socket (the peer then sees
// end_of_stream once no other copy of this end exists).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "mproc/detail/arrived_fds.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/record_encoding.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"

namespace mproc::detail {

class pipe_core {
 public:
  explicit pipe_core(int fd) noexcept : fd_(fd) {}
  ~pipe_core();
  pipe_core(const pipe_core&) = delete;
  pipe_core& operator=(const pipe_core&) = delete;

  /// A connected pair (socketpair, CLOEXEC).
  static std::pair<std::shared_ptr<pipe_core>, std::shared_ptr<pipe_core>> make_pair(std::error_code& ec);

  /// Sends one frame whose record `encode(writer&)` writes; a standalone record (descriptors
  /// inside the value, or a long encoding: see record_encoding.hpp) carries its descriptors.
  /// Throws what encode throws (nothing is sent then). end_of_stream when the peer is gone,
  /// closed after close().
  template <class Encode>
  void send(std::uint64_t type_id, Encode&& encode, std::error_code& ec) {
    std::vector<std::byte> frame;
    frame.reserve(64);
    wire::put_header(frame, wire::kind::data, type_id, 0);
    if (auto standalone = append_record(frame, std::forward<Encode>(encode), true)) {
      frame.clear();
      wire::put_frame_with_fds(frame, wire::kind::data, type_id, standalone->bytes,
                               static_cast<std::uint32_t>(standalone->fds.size()));
      return send_frame(frame, standalone->fds, ec);
    }
    wire::set_frame_length(frame, 0);
    send_frame(frame, {}, ec);
  }
  /// Sends a whole frame; `fds` go with its first bytes.
  void send_frame(std::span<const std::byte> frame, const fd_set_owned& fds, std::error_code& ec);

  /// One message as received: its type id, its record's inline bytes, and (a standalone
  /// record's) descriptors.
  struct message {
    std::uint64_t type_id = 0;
    std::vector<std::byte> record;
    bool out_of_line = false;
    fd_set_owned fds;
    /// Calls decode(span) with the value's encoding (see decode_standalone).
    template <class Decode>
    void decode(Decode&& d) {
      if (fds.empty()) return d(std::span<const std::byte>{record});
      decode_standalone(record, out_of_line, fds, std::forward<Decode>(d));
    }
  };
  /// Receives the next message. empty when `until` passed first, end_of_stream when the peer
  /// closed, bad_message on garbage (the end is closed then).
  bool receive(message& m, deadline until, std::error_code& ec);
  /// True when a message (or the end of the stream) can be received without waiting.
  bool poll(deadline until, std::error_code& ec);
  void close() noexcept;
  /// The socket, for mproc::wait; -1 after close().
  int native_handle() const noexcept;

 private:
  /// Waits until the socket is readable or `until`; false on timeout.
  bool wait_readable(deadline until, std::error_code& ec);

  mutable std::mutex fd_mutex_;
  int fd_;
  std::atomic<bool> closing_{false};
  std::mutex send_mutex_;
  std::mutex recv_mutex_;
  wire::frame_splitter splitter_;
  arrived_fds arrived_;
  bool eof_ = false;
};

}  // namespace mproc::detail
