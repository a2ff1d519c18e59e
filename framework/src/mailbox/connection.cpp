#include "connection.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <array>
#include <cerrno>
#include <cstring>

namespace mproc::detail {

namespace asio = boost::asio;

namespace {

bool would_block(const std::error_code& ec) {
  return ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block;
}

/// Whether `fd` is ready for `events` right now.
bool ready_now(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace

connection::connection(asio::io_context& io, unique_fd fd) : io_(io), socket_(io), fd_(fd.get()) {
  boost::system::error_code ec;
  socket_.assign(asio::local::stream_protocol{}, fd.release(), ec);
}

connection::~connection() {
  boost::system::error_code ignored;
  socket_.close(ignored);  // gated_fd_ closes itself
}

void connection::start(frame_handler on_frame, close_handler on_close) {
  {
    std::lock_guard lock{dispatch_};
    on_frame_ = std::move(on_frame);
    on_close_ = std::move(on_close);
  }
  if (direct_writes_ && borrowable_) open_gates();
  asio::post(io_, [self = shared_from_this()] { self->read_some(); });
}

void connection::open_gates() {
  std::error_code ec;
  read_gate_.emplace(io_, fd_, EPOLLIN, true, ec);
  if (!ec) write_gate_.emplace(io_, fd_, EPOLLOUT, false, ec);
  if (ec) {  // no gates: Asio goes on watching the socket itself, and borrow_reading declines
    read_gate_.reset();
    write_gate_.reset();
    return;
  }
  boost::system::error_code ignored;
  gated_fd_.reset(socket_.release(ignored));
}

void connection::shutdown_socket() noexcept { ::shutdown(fd_, SHUT_RDWR); }

void connection::send(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload, fd_set_owned fds) {
  std::unique_lock lock{mutex_};
  open_data_ = npos;
  append_frame(k, type_id, payload, std::move(fds));
  kick(lock);
}

void connection::send_now(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload) {
  std::unique_lock lock{mutex_};
  open_data_ = npos;
  append_frame(k, type_id, payload, {});
  kick(lock, true);
}

void connection::append_frame(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload,
                              fd_set_owned fds) {
  if (fds.empty()) return wire::put_frame(pending_, k, type_id, payload);
  pending_marks_.push_back({pending_.size(), {}});
  wire::put_frame_with_fds(pending_, k, type_id, payload, static_cast<std::uint32_t>(fds.size()));
  pending_marks_.back().fds = std::move(fds);
}

void connection::close_open_data_frame() noexcept {
  if (open_data_ == npos) return;
  if (pending_.size() == open_data_ + sizeof(wire::header)) pending_.resize(open_data_);
  else wire::set_frame_length(pending_, open_data_);
  open_data_ = npos;
}

void connection::send_first_with_fd(wire::kind k, std::span<const std::byte> payload, int fd, std::error_code& ec) {
  std::lock_guard lock{mutex_};
  if (appended_ != 0 || writing_) return void(ec = make_error_code(errc::invalid_argument));
  std::vector<std::byte> frame;
  wire::put_frame(frame, k, 0, payload);
  std::array<int, 1> fds{fd};
  // A small first write on an empty socket: it is taken whole (and sendmsg retries EINTR).
  send_packet(fd_, frame, fds, ec);
  if (!ec) written_total_ = appended_ = frame.size();
}

bool connection::idle_since_last_kick() {
  // How long "idle" must be for a direct write: longer than the gap between messages of a
  // stream (~1 us), shorter than a round trip (an actor request pinned to one CPU: ~15 us, so 20
  // made every request and reply of that round trip wait for the I/O thread's turn).
  constexpr auto idle = std::chrono::microseconds(5);
  auto now = std::chrono::steady_clock::now();
  bool idle_enough = now - last_kick_ >= idle;
  last_kick_ = now;
  return idle_enough;
}

void connection::take_pending() {
  inflight_.clear();
  inflight_marks_.clear();
  std::swap(inflight_, pending_);
  std::swap(inflight_marks_, pending_marks_);
  inflight_sent_ = next_mark_ = 0;
  open_data_ = npos;  // that frame is on its way; the next record opens a new one
}

void connection::kick(std::unique_lock<std::mutex>& lock, bool now) {
  appended_ = written_total_ + (inflight_.size() - inflight_sent_) + pending_.size();
  if (writing_ || ended_) return;
  writing_ = true;
  if (direct_writes_ && (idle_since_last_kick() || now) && pending_marks_.empty() && inflight_sent_ == inflight_.size()) {
    // writing_ makes this thread the writer: the I/O thread starts no write meanwhile.
    take_pending();
    lock.unlock();
    std::error_code ec;
    std::size_t n = send_packet(fd_, inflight_, {}, ec, true);
    lock.lock();
    if (!ec) {
      inflight_sent_ = n;
      written_total_ += n;
    }
    if (!ec && inflight_sent_ == inflight_.size() && pending_.empty()) {
      writing_ = false;
      written_.notify_all();
      return;
    }
    // The rest (or the error) is the I/O thread's: it finds inflight_ as if it had started it.
  }
  lock.unlock();
  asio::post(io_, [self = shared_from_this()] { self->write_some(); });
}

void connection::write_some() {
  for (;;) {
    if (inflight_sent_ == inflight_.size()) {  // both change only on this thread
      std::lock_guard lock{mutex_};
      if (pending_.empty() || ended_) {
        writing_ = false;
        // The end of a write counts as a kick: a stream that this write held up for a while
        // then goes on through this thread, not in direct writes of one message each.
        if (direct_writes_) last_kick_ = std::chrono::steady_clock::now();
        written_.notify_all();
        return;
      }
      take_pending();
    }
    // The descriptors of every frame not sent yet go with this sendmsg, as far as one sendmsg can
    // carry them; the bytes stop where a frame whose descriptors do not fit begins.
    std::vector<int> fds;
    std::size_t end = inflight_.size(), marks = next_mark_;
    for (; marks < inflight_marks_.size(); ++marks) {
      const auto& m = inflight_marks_[marks];
      if (fds.size() + m.fds.size() > wire::max_fds_per_frame) {
        end = m.at;
        break;
      }
      fds.insert(fds.end(), m.fds.fds().begin(), m.fds.fds().end());
    }
    std::error_code ec;
    std::size_t n = send_packet(fd_, std::span{inflight_}.subspan(inflight_sent_, end - inflight_sent_), fds, ec, true);
    if (would_block(ec)) return wait_writable();
    if (ec) return finish(ec);
    for (; next_mark_ < marks; ++next_mark_) inflight_marks_[next_mark_].fds.reset();  // the kernel has them now
    {
      std::lock_guard lock{mutex_};
      inflight_sent_ += n;
      written_total_ += n;
    }
    written_.notify_all();
    if (inflight_sent_ == inflight_.size()) {
      // Posted rather than looped: other connections on this I/O thread get their turn.
      return asio::post(io_, [self = shared_from_this()] { self->write_some(); });
    }
  }
}

void connection::wait_writable() {
  if (!write_gate_) {
    return socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](const boost::system::error_code& e) {
      if (e) return self->finish(e);
      self->write_some();
    });
  }
  write_gate_->open();
  // Opening does not report a socket that became writable meanwhile (readiness_gate.hpp).
  if (ready_now(fd_, POLLOUT)) {
    write_gate_->close();
    return asio::post(io_, [self = shared_from_this()] { self->write_some(); });
  }
  write_gate_->async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    self->write_gate_->close();  // open only while a write waits: space the peer frees wakes nobody else
    if (e) return self->finish(e);
    self->write_some();
  });
}

void connection::read_some() {
  auto room = splitter_.prepare();
  std::error_code ec;
  std::size_t n = arrived_fds_.receive(fd_, room, ec);
  if (would_block(ec)) return wait_readable();
  if (ec) return finish(ec);
  if (n == 0) {
    // EOF in the middle of a frame is a peer dying mid-message.
    return finish(splitter_.buffered() == 0 ? std::error_code{} : make_error_code(errc::bad_message));
  }
  splitter_.commit(n);
  if (before_frames_) before_frames_();
  if (dispatch()) {
    if (direct_writes_ && n < room.size()) {
      // Latency mode: the read drained the socket (a stream socket returns all it has up to the
      // room; only descriptors, which these connections do not carry, end a read early), so wait
      // for the next bytes without reading EAGAIN first: a syscall and a handler less per message.
      // Safe with edge-triggered epoll since only this thread runs the context now: no epoll_wait
      // can report (and drop) the next edge before this wait is queued.
      wait_readable();
    } else {
      // Posted rather than looped: other connections on this I/O thread get their turn.
      asio::post(io_, [self = shared_from_this()] { self->read_some(); });
    }
  }
  if (after_frames_) after_frames_();
}

void connection::wait_readable() {
  if (!read_gate_) {
    return socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](const boost::system::error_code& e) {
      if (e) return self->finish(e);
      self->read_some();
    });
  }
  {
    std::lock_guard lock{mutex_};
    reader_ = reader::io_waiting;  // from here a thread may borrow the reading
    if (read_wait_queued_) return;
    read_wait_queued_ = true;
  }
  read_gate_->async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    {
      std::lock_guard lock{self->mutex_};
      self->read_wait_queued_ = false;
      // Someone else reads: a borrower (these bytes came before it closed the gate; it hands back
      // later and, seeing no wait queued, posts resume_reading), or the resume_reading that a
      // borrower's hand-back posted (io_busy). One chain of reads at a time: else that one could
      // still run after this chain let a borrower in.
      if (self->reader_ != reader::io_waiting) return;
      self->reader_ = reader::io_busy;
    }
    if (e) return self->finish(e);
    self->read_some();
  });
}

void connection::resume_reading() {
  std::error_code ec;
  {
    std::lock_guard lock{mutex_};
    ec = std::exchange(handed_error_, {});
  }
  if (ec) return finish(ec);
  if (dispatch()) read_some();
}

connection::reading_lease connection::borrow_reading() {
  if (!read_gate_) return reading_lease{nullptr};
  {
    std::lock_guard lock{mutex_};
    if (ended_ || reader_ != reader::io_waiting) return reading_lease{nullptr};
    reader_ = reader::borrowed;
  }
  read_gate_->close();
  return reading_lease{this};
}

bool connection::reading_lease::read_until(deadline until, const std::function<bool()>& done) {
  if (!conn_) return false;
  for (;;) {
    if (done()) return true;
    if (stopped_) return false;
    auto left = until - std::chrono::steady_clock::now();
    if (left <= decltype(left)::zero()) return false;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    pollfd p{conn_->fd_, POLLIN, 0};
    int r = ::ppoll(&p, 1, &ts, nullptr);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    std::error_code ec;
    std::size_t n = conn_->arrived_fds_.receive(conn_->fd_, conn_->splitter_.prepare(), ec);
    if (would_block(ec)) continue;
    if (ec || n == 0) {  // the end or an error: the I/O thread meets it again and finishes
      stopped_ = hand_over_ = true;
      return false;
    }
    conn_->splitter_.commit(n);
    auto result = conn_->dispatch_frames(&done, bad_);
    if (bad_ || result == dispatched::ended) stopped_ = true;
    hand_over_ = conn_->splitter_.buffered() > 0;  // frames left, or part of one: the I/O thread's
  }
}

connection::reading_lease::~reading_lease() {
  if (conn_) conn_->give_back_reading(hand_over_ || bad_, bad_);
}

void connection::give_back_reading(bool hand_over, std::error_code bad) {
  read_gate_->open();
  // Opening does not report bytes that came meanwhile (readiness_gate.hpp): look.
  hand_over = hand_over || ready_now(fd_, POLLIN);
  {
    std::lock_guard lock{mutex_};
    handed_error_ = bad;
    if (ended_ || (!hand_over && read_wait_queued_)) {
      reader_ = reader::io_waiting;  // the I/O thread's wait goes on as if nothing happened
      return;
    }
    reader_ = reader::io_busy;
  }
  asio::post(io_, [self = shared_from_this()] { self->resume_reading(); });
}

bool connection::dispatch() {
  std::error_code ec;
  auto result = dispatch_frames(nullptr, ec);
  if (ec) {
    finish(ec);
    return false;
  }
  return result != dispatched::ended;
}

connection::dispatched connection::dispatch_frames(const std::function<bool()>* stop, std::error_code& ec) {
  wire::header h;
  std::span<const std::byte> payload;
  while (splitter_.next(h, payload, ec)) {
    fd_set_owned fds;
    if (!arrived_fds_.claim(h, payload, fds, ec)) break;
    {
      std::lock_guard lock{dispatch_};
      if (on_frame_) on_frame_(h, payload, fds);
    }
    if (!alive()) return dispatched::ended;
    if (stop && (*stop)()) return dispatched::stopped;
  }
  return dispatched::all;
}

void connection::finish(std::error_code ec) {
  bool borrowed;
  {
    std::lock_guard lock{mutex_};
    if (ended_) return;
    ended_ = true;
    writing_ = false;
    borrowed = reader_ == reader::borrowed;
  }
  written_.notify_all();
  shutdown_socket();
  if (!borrowed) arrived_fds_.clear();  // else the borrower's; the destructor closes them
  std::lock_guard lock{dispatch_};
  if (on_close_) on_close_(ec);
  on_frame_ = nullptr;  // the handlers may hold the connection: break that cycle
  on_close_ = nullptr;
}

void connection::stop_handlers() noexcept {
  std::lock_guard lock{dispatch_};
  on_frame_ = nullptr;
  on_close_ = nullptr;
}

bool connection::flush(deadline until) {
  if (io_.stopped()) return false;  // after the runtime's shutdown nothing is written any more
  std::unique_lock lock{mutex_};
  std::uint64_t target = appended_;
  return written_.wait_until(lock, until, [&] { return ended_ || written_total_ >= target; }) && !ended_;
}

void connection::close() noexcept {
  // shutdown() wakes the pending read with EOF; finish() then runs on the I/O thread.
  asio::post(io_, [self = shared_from_this()] {
    self->shutdown_socket();
    self->finish({});
  });
}

bool connection::alive() const {
  std::lock_guard lock{mutex_};
  return !ended_;
}

}  // namespace mproc::detail
