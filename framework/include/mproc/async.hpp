// mproc/async.hpp — the asynchronous face of queues and pipes, for Boost.Asio programs (and the
// actor and pool layers): completion handlers instead of blocked threads.
//
//   boost::asio::io_context io;
//   mproc::async_get(io.get_executor(), q, [](std::error_code ec, int v) { ... });
//   mproc::async_recv(io.get_executor(), pipe_end, [](std::error_code ec, std::string s) { ... });
//   io.run();
//
// Any Asio completion token works (a handler, boost::asio::use_awaitable, ...); the signature is
// void(std::error_code, T). Errors are those of try_get / recv: closed, end_of_stream,
// wrong_type, bad_message, node_closed. The handler runs on the given executor, never inside
// the initiating call.
//
// How: the operation waits (async_wait) for the readiness fd that mproc::wait uses, then takes
// the message without blocking; when another consumer was faster it waits again, and when the
// first message is a large one whose body is still being written it asks again after a short
// pause (never spinning on the fd, which stays readable meanwhile). A consumer in
// a process other than the queue's owner asks the owner for data while the operation is
// pending; what arrives after the operation ended stays in this process for the next get (and
// goes back to the queue if the handle is dropped).
//
// Thread safety: as the synchronous calls. The queue handle / pipe end is copied into the
// operation, so the caller's object may go away meanwhile. Destroying the io_context with an
// operation pending destroys the handler without calling it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "mproc/pipe.hpp"
#include "mproc/detail/readiness.hpp"
#include "mproc/queue.hpp"

namespace mproc {
namespace detail {

/// One pending asynchronous take: watch fd -> async_wait -> try to take -> complete or rewait.
/// `Source` supplies: int watch(ec), void unwatch(), std::optional<T> try_take(ec).
template <class T, class Source, class Executor, class Handler>
class async_take_op : public std::enable_shared_from_this<async_take_op<T, Source, Executor, Handler>> {
 public:
  async_take_op(const Executor& ex, Source source, Handler handler)
      : descriptor_(ex), retry_timer_(ex), source_(std::move(source)), handler_(std::move(handler)) {}
  ~async_take_op() {
    if (watching_) source_.unwatch();
  }

  void start() {
    std::error_code ec;
    int fd = source_.watch(ec);
    if (ec || fd < 0) return fail(ec ? ec : make_error_code(errc::invalid_argument));
    watching_ = true;
    // A duplicate: the descriptor object closes it, the source keeps its own.
    boost::system::error_code bec;
    descriptor_.assign(::fcntl(fd, F_DUPFD_CLOEXEC, 3), bec);
    if (bec) return fail(std::error_code{bec.value(), std::system_category()});
    wait();
  }

 private:
  void wait() {
    descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [self = this->shared_from_this()](const boost::system::error_code& ec) {
                             if (ec) return self->complete(std::error_code{ec.value(), std::system_category()}, T{});
                             self->attempt();
                           });
  }
  void attempt() {
    std::error_code take_ec;
    auto v = source_.try_take(take_ec);
    if (take_ec == errc::empty) return wait();  // taken by someone else: wait for the next one
    if (take_ec == errc::timeout) return retry_later();
    if (take_ec) return complete(take_ec, T{});
    complete({}, std::move(*v));
  }
  /// A large message whose body is still being written stays first in the queue, and the
  /// readiness fd stays readable: waiting on it again would spin until the body is whole. So
  /// ask again after a pause, from 100 µs doubling up to 2 ms: a body that is being written is
  /// whole after the first few tries, one whose producer stalls costs a cheap try (the body is
  /// not decoded until it is whole) every 2 ms, and is taken at most 2 ms late.
  void retry_later() {
    using std::chrono::microseconds;
    backoff_ = backoff_ == microseconds{0} ? microseconds{100} : std::min(backoff_ * 2, microseconds{2000});
    retry_timer_.expires_after(backoff_);
    retry_timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->complete(std::error_code{ec.value(), std::system_category()}, T{});
      self->attempt();
    });
  }
  void fail(std::error_code ec) {
    // Never inside the initiating call: go through the executor.
    boost::asio::post(descriptor_.get_executor(),
                      [self = this->shared_from_this(), ec] { self->complete(ec, T{}); });
  }
  void complete(std::error_code ec, T value) {
    if (watching_) source_.unwatch();
    watching_ = false;
    handler_(ec, std::move(value));
  }

  boost::asio::posix::stream_descriptor descriptor_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::microseconds backoff_{0};
  Source source_;
  Handler handler_;
  bool watching_ = false;
};

template <class T, bool CanPut>
struct queue_source : queue_readiness<T, CanPut> {
  std::optional<T> try_take(std::error_code& ec) { return this->q.get(std::chrono::steady_clock::duration::zero(), ec); }
};

template <class T, bool CanWrite>
struct pipe_source : pipe_readiness<T, CanWrite> {
  std::optional<T> try_take(std::error_code& ec) {
    return this->end.recv(std::chrono::steady_clock::duration::zero(), ec);
  }
};

template <class T, class Source, class Executor, class Token>
auto async_take(const Executor& ex, Source source, Token&& token) {
  return boost::asio::async_initiate<Token, void(std::error_code, T)>(
      [](auto handler, const Executor& e, Source s) {
        using op = async_take_op<T, Source, Executor, std::decay_t<decltype(handler)>>;
        std::make_shared<op>(e, std::move(s), std::move(handler))->start();
      },
      token, ex, std::move(source));
}

}  // namespace detail

/// Takes the next message of `q` without blocking a thread; completes with (error, value).
template <class T, bool CanPut, class Executor, class Token>
auto async_get(const Executor& ex, const basic_queue<T, CanPut>& q, Token&& token) {
  return detail::async_take<T>(ex, detail::queue_source<T, CanPut>{{q}}, std::forward<Token>(token));
}

/// Receives the next message of a pipe end without blocking a thread.
template <class T, bool CanWrite, class Executor, class Token>
auto async_recv(const Executor& ex, const basic_pipe_end<T, true, CanWrite>& end, Token&& token) {
  return detail::async_take<T>(ex, detail::pipe_source<T, CanWrite>{{end}}, std::forward<Token>(token));
}

}  // namespace mproc
