#include "connection.hpp"

#include <boost/asio/post.hpp>
#include <array>
#include <cstring>

namespace mproc::detail {

namespace asio = boost::asio;

connection::connection(asio::io_context& io, unique_fd fd) : io_(io), socket_(io) {
  boost::system::error_code ec;
  socket_.assign(asio::local::stream_protocol{}, fd.release(), ec);
}

connection::~connection() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void connection::start(frame_handler on_frame, close_handler on_close) {
  {
    std::lock_guard lock{dispatch_};
    on_frame_ = std::move(on_frame);
    on_close_ = std::move(on_close);
  }
  asio::post(io_, [self = shared_from_this()] { self->read_some(); });
}

void connection::send(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload, fd_set_owned fds) {
  std::unique_lock lock{mutex_};
  open_data_ = npos;
  append_frame(k, type_id, payload, std::move(fds));
  kick(lock);
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
  send_packet(socket_.native_handle(), frame, fds, ec);
  if (!ec) written_total_ = appended_ = frame.size();
}

bool connection::idle_since_last_kick() {
  // How long "idle" must be for a direct write: longer than the gap between messages of a
  // stream, shorter than a round trip.
  constexpr auto idle = std::chrono::microseconds(20);
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

void connection::kick(std::unique_lock<std::mutex>& lock) {
  appended_ = written_total_ + (inflight_.size() - inflight_sent_) + pending_.size();
  if (writing_ || ended_) return;
  writing_ = true;
  if (direct_writes_ && idle_since_last_kick() && pending_marks_.empty() && inflight_sent_ == inflight_.size()) {
    // writing_ makes this thread the writer: the I/O thread starts no write meanwhile.
    take_pending();
    lock.unlock();
    std::error_code ec;
    std::size_t n = send_packet(socket_.native_handle(), inflight_, {}, ec, true);
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
    std::size_t n = send_packet(socket_.native_handle(), std::span{inflight_}.subspan(inflight_sent_, end - inflight_sent_),
                                fds, ec, true);
    if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block)
      return socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](const boost::system::error_code& e) {
        if (e) return self->finish(e);
        self->write_some();
      });
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

void connection::read_some() {
  auto room = splitter_.prepare();
  std::error_code ec;
  std::size_t n = arrived_fds_.receive(socket_.native_handle(), room, ec);
  if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block) return wait_readable();
  if (ec) return finish(ec);
  if (n == 0) {
    // EOF in the middle of a frame is a peer dying mid-message.
    return finish(splitter_.buffered() == 0 ? std::error_code{} : make_error_code(errc::bad_message));
  }
  splitter_.commit(n);
  if (!dispatch()) return;
  if (direct_writes_ && n < room.size()) {
    // Latency mode: the read drained the socket (a stream socket returns all it has up to the
    // room; only descriptors, which these connections do not carry, end a read early), so wait
    // for the next bytes without reading EAGAIN first: a syscall and a handler less per message.
    // Safe with edge-triggered epoll since only this thread runs the context now: no epoll_wait
    // can report (and drop) the next edge before this wait is queued.
    return wait_readable();
  }
  // Posted rather than looped: other connections on this I/O thread get their turn.
  asio::post(io_, [self = shared_from_this()] { self->read_some(); });
}

void connection::wait_readable() {
  socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](const boost::system::error_code& e) {
    if (e) return self->finish(e);
    self->read_some();
  });
}

bool connection::dispatch() {
  wire::header h;
  std::span<const std::byte> payload;
  std::error_code ec;
  while (splitter_.next(h, payload, ec)) {
    fd_set_owned fds;
    if (!arrived_fds_.claim(h, payload, fds, ec)) break;
    {
      std::lock_guard lock{dispatch_};
      if (on_frame_) on_frame_(h, payload, fds);
    }
    if (!alive()) return false;
  }
  if (ec) {
    finish(ec);
    return false;
  }
  return true;
}

void connection::finish(std::error_code ec) {
  {
    std::lock_guard lock{mutex_};
    if (ended_) return;
    ended_ = true;
    writing_ = false;
  }
  written_.notify_all();
  boost::system::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  arrived_fds_.clear();
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
    boost::system::error_code ignored;
    self->socket_.shutdown(asio::socket_base::shutdown_both, ignored);
    self->finish({});
  });
}

bool connection::alive() const {
  std::lock_guard lock{mutex_};
  return !ended_;
}

}  // namespace mproc::detail
