// Internal: one framed Unix-domain stream connection of a mailbox, driven by the process's
// mailbox I/O thread.
//
// Writing is group commit: any thread appends frames to an output buffer; the I/O thread
// writes whatever has accumulated in one syscall while callers go on appending. Consecutive
// records of one type join a single data frame. Under load that batches thousands of
// messages per write; when idle a message leaves at once.
//
// Reading: the I/O thread reads in 64 KiB chunks and hands each complete frame to the frame
// handler, in order. A bad frame, EOF or an error ends the connection: the close handler runs
// once, on the I/O thread, with the reason (clear for a clean EOF).
//
// Descriptors: a frame may carry some (wire::with_fds). They are sent, in frame order, with a
// sendmsg whose bytes start no later than the frame does; the kernel delivers them with those
// bytes, and the reader queues what arrives, so it has them by the time the frame is complete. Asio has no
// ancillary data, so the socket is driven by sendmsg/recvmsg with Asio's readiness waits.
//
// Latency mode (set_direct_writes) also lets a thread that waits for an answer read the socket
// itself (borrow_reading), which saves the wake-up of the I/O thread between the socket and that
// thread. The I/O thread watches the socket through a readiness_gate then, which the reading
// thread closes meanwhile; reading goes back and forth by a small state (reader_): the I/O thread
// reads, waits (the only state a thread may borrow the reading from), or a borrower reads.
//
// Thread safety: send*, flush, close, stop_handlers and borrow_reading from any thread; handlers
// run one at a time, on the I/O thread (or on a thread that holds the reading).
// Destructor: closes the socket; unsent bytes are dropped (call flush first).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "../fd.hpp"
#include "readiness_gate.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/detail/wire.hpp"
#include "mproc/detail/arrived_fds.hpp"
#include "mproc/detail/record_encoding.hpp"

namespace mproc::detail {

class connection : public std::enable_shared_from_this<connection> {
 public:
  /// The header (with_fds cleared), the payload, and the frame's descriptors (the handler may
  /// take them; what it leaves is closed).
  using frame_handler = std::function<void(const wire::header&, std::span<const std::byte>, fd_set_owned&)>;
  using close_handler = std::function<void(std::error_code)>;

  connection(boost::asio::io_context& io, unique_fd fd);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Starts reading; call once. Handlers hold no reference to the connection.
  void start(frame_handler on_frame, close_handler on_close);

  /// Appends one frame, with descriptors (closed once sent).
  void send(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload, fd_set_owned fds = {});
  /// Latency mode: appends one frame and writes it from this thread unless a write is under way,
  /// however recent the last one (a request whose sender waits for the answer is no stream).
  void send_now(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload);
  /// Sends the connection's first frame with a descriptor attached (SCM_RIGHTS), at once.
  /// errc::invalid_argument when something was written before.
  void send_first_with_fd(wire::kind k, std::span<const std::byte> payload, int fd, std::error_code& ec);
  template <class Message>
  void send_message(wire::kind k, const Message& m) {
    auto bytes = to_bytes(m);
    send(k, 0, bytes);
  }
  /// Appends one record to the open data frame (or opens one); a standalone record (see
  /// record_encoding.hpp) gets a frame of its own, its memfd made without our lock held (it may
  /// wait for a pooled body to come back). Throws what encode throws; nothing is appended then.
  template <class Encode>
  void send_record(std::uint64_t type_id, Encode&& encode) {
    std::unique_lock lock{mutex_};
    if (open_data_ == npos || open_type_ != type_id) {
      open_data_ = pending_.size();
      open_type_ = type_id;
      wire::put_header(pending_, wire::kind::data, type_id, 0);
    }
    std::optional<encoded_standalone> encoded;
    try {
      encoded = encode_record(pending_, std::forward<Encode>(encode));
    } catch (...) {
      close_open_data_frame();
      throw;
    }
    if (!encoded) {
      wire::set_frame_length(pending_, open_data_);
      return kick(lock);
    }
    close_open_data_frame();
    lock.unlock();
    standalone_record standalone = make_standalone(std::move(*encoded), true, true);
    lock.lock();
    close_open_data_frame();  // another thread may have opened one meanwhile: it must not grow past ours
    append_frame(wire::kind::data, type_id, standalone.bytes, std::move(standalone.fds));
    kick(lock);
    if (lock.owns_lock()) lock.unlock();
    standalone.fill.run();  // a pooled body: its reader copies it out while we copy it in
  }

  /// Latency mode (the actor router's connections): a frame appended while the connection has
  /// been idle for a while is written at once by the appending thread, saving the wake-up of the
  /// I/O thread on every request and reply. Back-to-back frames still go through the I/O thread,
  /// so a stream of messages keeps its batching. A read that drained the socket then waits for
  /// more at once, without a read that finds it empty. For connections that carry no
  /// descriptors. Call before start().
  void set_direct_writes(bool on) noexcept { direct_writes_ = on; }
  /// Whether a latency-mode connection may be borrowed (default true): false keeps the socket in
  /// Asio's own epoll set, without gates, which saves the gate's extra epoll hop per read for a
  /// side that only serves (a host's uplink); borrow_reading then declines. Set before start().
  void set_borrowable(bool on) noexcept { borrowable_ = on; }

  /// Calls `before` on the I/O thread before the frames of one of its reads go to the frame
  /// handler, and `after` once they went and the next read is on its way (also when the
  /// connection ended meanwhile). Not around a borrower's reads. Set before start().
  void set_read_hooks(std::function<void()> before, std::function<void()> after) {
    before_frames_ = std::move(before);
    after_frames_ = std::move(after);
  }

  /// The reading of a latency-mode connection, borrowed from the I/O thread by a thread that is
  /// about to wait for an answer (borrow_reading). Move-only; one thread.
  /// Destructor: hands the reading back to the I/O thread, with what is left (bytes, an error).
  class reading_lease {
   public:
    reading_lease() noexcept = default;
    reading_lease(reading_lease&& o) noexcept
        : conn_(std::exchange(o.conn_, nullptr)), stopped_(o.stopped_), hand_over_(o.hand_over_), bad_(o.bad_) {}
    reading_lease& operator=(reading_lease&&) = delete;
    ~reading_lease();
    /// Whether the reading was borrowed (else read_until does nothing).
    explicit operator bool() const noexcept { return conn_ != nullptr; }
    /// Reads the socket on this thread and hands frames to the frame handler as the I/O thread
    /// would, until `done()` holds (checked first and after each frame; true then), `until`
    /// passes, or the stream ends or breaks (false; the I/O thread meets that then).
    bool read_until(deadline until, const std::function<bool()>& done);

   private:
    friend class connection;
    explicit reading_lease(connection* c) noexcept : conn_(c) {}
    connection* conn_ = nullptr;  // the borrower holds a reference to the connection meanwhile
    bool stopped_ = false, hand_over_ = false;
    std::error_code bad_;
  };
  /// Latency mode: takes the reading over from the I/O thread, which is not woken by what arrives
  /// until the lease ends. Borrow before sending the request, so that even a quick answer wakes
  /// only this thread. An empty lease when the I/O thread is reading right now, another thread
  /// holds the reading, or the connection is not in latency mode or ended. Not on the I/O thread.
  reading_lease borrow_reading();

  /// Waits until everything appended so far has been written. False on timeout or when the
  /// connection broke first. Must not be called on the I/O thread.
  bool flush(deadline until);
  /// Shuts the socket down (both directions); the close handler runs soon after.
  void close() noexcept;
  /// After this returns no handler runs any more, nor is one running (so an object the
  /// handlers point to may be destroyed). Must not be called from a handler.
  void stop_handlers() noexcept;
  bool alive() const;
  int native_handle() noexcept { return fd_; }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  /// Descriptors that go with the frame starting at `at` (an offset in its buffer).
  struct fd_mark {
    std::size_t at;
    fd_set_owned fds;
  };
  // With mutex_ held:
  void append_frame(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload, fd_set_owned fds);
  /// Ends the open data frame; an empty one is removed.
  void close_open_data_frame() noexcept;
  /// Schedules a write if none runs; `now`: write directly in latency mode even if not idle.
  void kick(std::unique_lock<std::mutex>& lock, bool now = false);
  /// Moves what was appended into the buffer being written (which must be fully written).
  void take_pending();
  /// Latency mode: true when the last kick was long enough ago; records this one.
  bool idle_since_last_kick();
  // On the I/O thread:
  void write_some();
  void wait_writable();
  void read_some();
  void wait_readable();
  /// After a reading_lease: what it left (an error, complete frames), then reading as usual.
  void resume_reading();
  /// The end of a reading_lease (on the borrower's thread).
  void give_back_reading(bool hand_over, std::error_code bad);
  /// Hands the complete frames read so far to the handler; false when the connection ended.
  bool dispatch();
  void finish(std::error_code ec);
  void shutdown_socket() noexcept;
  /// Latency mode: the socket leaves Asio's epoll set for two gates of ours.
  void open_gates();

  enum class dispatched { all, stopped, ended };
  /// dispatch() for any reader: stops after a frame when `stop` (if any) says so; ec set on a bad
  /// frame (the caller ends the connection).
  dispatched dispatch_frames(const std::function<bool()>* stop, std::error_code& ec);

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::socket socket_;  // released to the gates in latency mode
  int fd_;
  unique_fd gated_fd_;  // the socket, owned here once released from socket_
  std::optional<readiness_gate> read_gate_, write_gate_;
  bool borrowable_ = true;
  wire::frame_splitter splitter_;
  arrived_fds arrived_fds_;  // I/O thread
  std::mutex dispatch_;  // held while a handler runs
  std::function<void()> before_frames_, after_frames_;  // set before start()
  frame_handler on_frame_;   // guarded by dispatch_
  close_handler on_close_;   // guarded by dispatch_

  mutable std::mutex mutex_;
  std::condition_variable written_;
  std::vector<std::byte> pending_;   // appended, not yet handed to the socket
  std::vector<std::byte> inflight_;  // being written
  std::vector<fd_mark> pending_marks_, inflight_marks_;
  std::size_t inflight_sent_ = 0;  // bytes of inflight_ written (I/O thread)
  std::size_t next_mark_ = 0;      // first of inflight_marks_ whose descriptors are not sent yet
  std::size_t open_data_ = npos;     // offset of the open data frame's header in pending_
  std::uint64_t open_type_ = 0;
  bool writing_ = false;
  std::uint64_t appended_ = 0;  // bytes ever appended
  std::uint64_t written_total_ = 0;  // bytes ever written
  bool ended_ = false;
  bool direct_writes_ = false;
  /// Who reads the socket (with mutex_ held). Gated connections only; the others stay io_busy.
  enum class reader { io_busy, io_waiting, borrowed } reader_ = reader::io_busy;
  bool read_wait_queued_ = false;  // a wait on read_gate_ is pending
  std::error_code handed_error_;   // a bad frame a borrower met, for the I/O thread
  std::chrono::steady_clock::time_point last_kick_{};  // with mutex_ held
};

}  // namespace mproc::detail
