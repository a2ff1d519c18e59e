#include "connection.hpp"

#include <boost/asio/post.hpp>
#include <array>
#include <boost/asio/write.hpp>

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

void connection::send(wire::kind k, std::uint64_t type_id, std::span<const std::byte> payload) {
  std::unique_lock lock{mutex_};
  open_data_ = npos;
  wire::put_frame(pending_, k, type_id, payload);
  kick(lock);
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

void connection::kick(std::unique_lock<std::mutex>& lock) {
  appended_ = written_total_ + inflight_.size() + pending_.size();
  if (writing_ || ended_) return;
  writing_ = true;
  lock.unlock();
  asio::post(io_, [self = shared_from_this()] { self->write_some(); });
}

void connection::write_some() {
  {
    std::lock_guard lock{mutex_};
    if (pending_.empty() || ended_) {
      writing_ = false;
      written_.notify_all();
      return;
    }
    inflight_.clear();
    std::swap(inflight_, pending_);
    open_data_ = npos;  // that frame is on its way; the next record opens a new one
  }
  asio::async_write(socket_, asio::buffer(inflight_),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                      if (ec) return self->finish(ec);
                      {
                        std::lock_guard lock{self->mutex_};
                        self->written_total_ += n;
                        self->inflight_.clear();
                      }
                      self->written_.notify_all();
                      self->write_some();
                    });
}

void connection::read_some() {
  auto room = splitter_.prepare();
  socket_.async_read_some(asio::buffer(room.data(), room.size()),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) {
                              // EOF in the middle of a frame is a peer dying mid-message.
                              if (ec == asio::error::eof && self->splitter_.buffered() == 0) return self->finish({});
                              if (ec == asio::error::eof) return self->finish(make_error_code(errc::bad_message));
                              return self->finish(ec);
                            }
                            self->splitter_.commit(n);
                            wire::header h;
                            std::span<const std::byte> payload;
                            std::error_code fec;
                            while (self->splitter_.next(h, payload, fec)) {
                              {
                                std::lock_guard lock{self->dispatch_};
                                if (self->on_frame_) self->on_frame_(h, payload);
                              }
                              if (!self->alive()) return;
                            }
                            if (fec) return self->finish(fec);
                            self->read_some();
                          });
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
