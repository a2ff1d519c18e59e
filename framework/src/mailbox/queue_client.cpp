#include "queue_client.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "body_pool.hpp"

namespace mproc::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t max_want = 1 << 16;
/// A batch drained faster than this doubles the next want; slower than `slow` resets it to 1.
constexpr auto fast = 2ms;
constexpr auto slow = 20ms;
/// How long a dropped handle waits for its puts to reach the owner.
constexpr auto drop_flush_limit = 10s;

/// A request to the owner; id 0 for those it does not answer.
void send_request(connection& conn, std::uint64_t id, wire::op what, std::uint64_t arg) {
  conn.send_message(wire::kind::request, wire::request_message{id, static_cast<std::uint8_t>(what), arg});
}

}  // namespace

queue_client::queue_client(queue_token token, std::shared_ptr<connection> conn, const wire::welcome_message& welcome,
                           std::shared_ptr<shared_counter> consumed)
    : token_(std::move(token)),
      conn_(std::move(conn)),
      maxsize_(welcome.maxsize),
      closed_(welcome.closed),
      consumed_(std::move(consumed)) {}

void queue_client::start() {
  // Plain `this`: the destructor needs replies (its flush) while it runs, and it stops the
  // handlers before the object goes.
  conn_->start([this](const wire::header& h, std::span<const std::byte> payload,
                      fd_set_owned& fds) { on_frame(h, payload, fds); },
               [this](std::error_code ec) { on_close(ec); });
}

queue_client::~queue_client() {
  std::vector<record_store::chunk> unconsumed;
  {
    std::lock_guard lock{mutex_};
    unconsumed = inbox_.drain();
  }
  // Records fetched for this process but never returned by get() go back to the front of the
  // queue, so dropping a handle loses nothing. Each give-back goes to the front: newest first.
  for (auto it = unconsumed.rbegin(); it != unconsumed.rend(); ++it)
    conn_->send(wire::kind::give_back, token_.type_id, it->bytes, std::move(it->fds));
  if (!flush(std::chrono::steady_clock::now() + drop_flush_limit))
    std::fprintf(stderr, "mproc: queue %llu: messages still unsent after %llds; dropping them\n",
                 static_cast<unsigned long long>(token_.queue_id),
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(drop_flush_limit).count()));
  conn_->stop_handlers();
  conn_->close();
}

std::error_code queue_client::broken_locked() const noexcept {
  // The owner's process ended (or closed our connection): the queue is gone for us.
  return make_error_code(dead_reason_ == errc::bad_message || dead_reason_ == errc::wrong_type
                             ? static_cast<errc>(dead_reason_.value())
                             : errc::node_closed);
}

void queue_client::put(encode_fn encode, const void* value, deadline until, std::error_code& ec) {
  std::unique_lock lock{mutex_};
  if (closed_) return void(ec = make_error_code(errc::closed));
  if (dead_) return void(ec = broken_locked());
  if (maxsize_ > 0) {
    if (credits_ == 0 && credit_request_ == 0) {
      credit_request_ = ++next_id_;
      send_request(*conn_, credit_request_, wire::op::credit, 1);
    }
    if (!changed_.wait_until(lock, until, [&] { return credits_ > 0 || closed_ || dead_; }))
      return void(ec = make_error_code(errc::full));  // the request stays: its slot serves the next put
    if (closed_) return void(ec = make_error_code(errc::closed));
    if (dead_) return void(ec = broken_locked());
    --credits_;
  }
  lock.unlock();
  try {
    conn_->send_record(token_.type_id, [&](writer& w) { encode(w, value); });
  } catch (...) {
    if (maxsize_ > 0) {
      std::lock_guard relock{mutex_};
      ++credits_;  // nothing was sent: keep the slot
    }
    throw;
  }
  ec.clear();
}

void queue_client::ask_for_more_locked() {
  if (taking_) {
    // The record being decoded may come back: ask once that get is done.
    ask_after_taking_ = true;
    return;
  }
  if (!inbox_.empty() || want_out_ || final_ || dead_) return;
  std::uint32_t k = k_;
  conn_->send(wire::kind::want, 0, std::as_bytes(std::span{&k, 1}));
  want_out_ = true;
}

void queue_client::get(decode_fn decode, void* value, deadline until, std::error_code& ec) {
  std::unique_lock lock{mutex_};
  // Asked again on each wake-up: a get that waited for another one's record may find the
  // inbox empty then.
  if (!changed_.wait_until(lock, until, [&] {
        ask_for_more_locked();
        return ready_locked();
      })) {
    ec = make_error_code(errc::empty);  // the want stays out: what it brings waits in the inbox
    return;
  }
  if (inbox_.empty()) {
    ec = final_ ? final_ : broken_locked();
    return;
  }
  bool took_turn = false, came_back = false;
  {
    // A pooled body goes back to its producer only once counted: until then, if this process
    // dies, the owner gives the message to another consumer, which needs the body as it is.
    body_pool::deferred_release counted_first;
    auto decoder = [&](std::span<const std::byte> bytes) { decode(bytes, value); };
    if (inbox_.front_is_small()) {
      ec = inbox_.pop_front(decoder);
    } else {
      // Puts, arrivals and the owner's replies go on meanwhile (a large body may take long, or
      // still be on its way). Gets take turns, so that records are counted in the order they
      // arrived (the owner recovers a dead consumer's records by that count) and a record that
      // comes back (its body late at the deadline) goes back exactly where it was.
      took_turn = true;
      ec = inbox_.decode_front_unlocked(lock, taking_, decoder, until, [&] { ready_.update(ready_locked()); });
      came_back = ec == errc::timeout;
    }
    // Counted once taken: if this process dies now, the owner knows this one was delivered.
    if (!came_back && consumed_) consumed_->value().store(++consumed_total_, std::memory_order_release);
  }
  if (inbox_.empty()) {
    auto took = std::chrono::steady_clock::now() - batch_arrived_;
    if (took < fast) k_ = std::min(k_ * 2, max_want);
    else if (took > slow) k_ = 1;
  }
  // A get or watch that could not ask for more meanwhile: a watcher waits for what it brings.
  if (std::exchange(ask_after_taking_, false)) ask_for_more_locked();
  ready_.update(ready_locked());
  lock.unlock();
  if (took_turn) changed_.notify_all();  // a get waiting for its turn
}

std::shared_ptr<void> queue_client::writer_presence() {
  std::lock_guard lock{mutex_};
  if (auto p = presence_.lock()) return p;
  send_request(*conn_, 0, wire::op::writer, 1);
  // Not an owning pointer: its "deleter" tells the owner the last writer handle here went.
  std::shared_ptr<void> p{static_cast<void*>(this),
                          [conn = conn_](void*) { send_request(*conn, 0, wire::op::writer, 0); }};
  presence_ = p;
  return p;
}

std::uint64_t queue_client::issue_ticket() {
  std::uint64_t id = new_ticket_id();
  send_request(*conn_, 0, wire::op::ticket_issue, id);  // ahead of our own presence's end, on this connection
  return id;
}

void queue_client::redeem_ticket(std::uint64_t ticket) { send_request(*conn_, 0, wire::op::ticket_redeem, ticket); }
void queue_client::release_ticket(std::uint64_t ticket) { send_request(*conn_, 0, wire::op::ticket_release, ticket); }

int queue_client::watch(std::error_code& ec) {
  std::lock_guard lock{mutex_};
  ask_for_more_locked();
  return ready_.watch(ready_locked(), ec);
}

void queue_client::unwatch() noexcept {
  std::lock_guard lock{mutex_};
  ready_.unwatch();
}

std::uint64_t queue_client::call(wire::op what, std::uint64_t arg, deadline until, std::error_code& ec) {
  std::unique_lock lock{mutex_};
  if (dead_) {
    ec = broken_locked();
    return 0;
  }
  std::uint64_t id = ++next_id_;
  replies_[id];
  send_request(*conn_, id, what, arg);
  bool done = changed_.wait_until(lock, until, [&] { return replies_[id].done || dead_; });
  auto r = replies_[id];
  replies_.erase(id);
  if (!done) {
    ec = make_error_code(errc::timeout);
    return 0;
  }
  if (!r.done) {
    ec = broken_locked();
    return 0;
  }
  ec = r.code != 0 ? make_error_code(static_cast<errc>(r.code)) : std::error_code{};
  return r.value;
}

bool queue_client::flush(deadline until) {
  std::error_code ec;
  call(wire::op::sync, 0, until, ec);
  // A queue whose owner is gone has nobody to deliver to: that is not a failed flush.
  return ec != errc::timeout;
}

std::size_t queue_client::qsize(std::error_code& ec) { return call(wire::op::qsize, 0, forever, ec); }

void queue_client::close(std::error_code& ec) {
  call(wire::op::close, 0, forever, ec);
  std::lock_guard lock{mutex_};
  if (!ec) closed_ = true;
}

void queue_client::task_done(std::error_code& ec) { call(wire::op::task_done, 0, forever, ec); }

void queue_client::join(deadline until, std::error_code& ec) {
  // Our own earlier puts precede the request on the connection, so the owner counts them.
  call(wire::op::join, 0, until, ec);
}

void queue_client::on_frame(const wire::header& h, std::span<const std::byte> payload, fd_set_owned& fds) {
  auto k = static_cast<wire::kind>(h.kind);
  std::unique_lock lock{mutex_};
  switch (k) {
    case wire::kind::batch: {
      std::error_code ec;
      std::size_t n = wire::record_cursor::count(payload, ec, fds.size());
      if (ec || h.type_id != token_.type_id || n == 0) break;
      inbox_.append_batch(std::vector<std::byte>(payload.begin(), payload.end()), n, std::move(fds));
      want_out_ = false;
      batch_arrived_ = std::chrono::steady_clock::now();
      ready_.update(ready_locked());
      lock.unlock();
      changed_.notify_all();
      return;
    }
    case wire::kind::status: {
      wire::status_message s;
      if (!wire::try_decode(payload, s)) break;
      final_ = make_error_code(static_cast<errc>(s.code));
      want_out_ = false;
      ready_.update(ready_locked());
      lock.unlock();
      changed_.notify_all();
      return;
    }
    case wire::kind::reply: {
      wire::reply_message r;
      if (!wire::try_decode(payload, r)) break;
      if (r.id == credit_request_) {
        credit_request_ = 0;
        if (r.code == 0) credits_ += r.value;
        else if (r.code == static_cast<std::int32_t>(errc::closed)) closed_ = true;
      } else if (auto it = replies_.find(r.id); it != replies_.end()) {
        it->second = {true, r.code, r.value};
      }
      lock.unlock();
      changed_.notify_all();
      return;
    }
    case wire::kind::notice:
      closed_ = true;
      lock.unlock();
      changed_.notify_all();
      return;
    default:
      break;
  }
  // Anything else is a protocol violation: drop the connection rather than guess.
  lock.unlock();
  conn_->close();
}

void queue_client::on_close(std::error_code ec) {
  {
    std::lock_guard lock{mutex_};
    dead_ = true;
    dead_reason_ = ec;
    ready_.update(ready_locked());
  }
  changed_.notify_all();
}

}  // namespace mproc::detail
