#include "queue_owner.hpp"

#include <algorithm>

namespace mproc::detail {
namespace {

/// Upper bound on one batch sent to a consumer.
constexpr std::size_t max_batch_bytes = 1 << 20;

}  // namespace

queue_owner::queue_owner(queue_token token, std::string type_name, std::size_t maxsize)
    : token_(std::move(token)), type_name_(std::move(type_name)), maxsize_(maxsize) {}

// ---- local handles ----------------------------------------------------------------------

void queue_owner::put(encode_fn encode, const void* value, deadline until, std::error_code& ec) {
  std::unique_lock lock{mutex_};
  if (!changed_.wait_until(lock, until, [&] { return closed_ || has_room(); })) {
    ec = make_error_code(errc::full);
    return;
  }
  if (closed_) {
    ec = make_error_code(errc::closed);
    return;
  }
  store_.append([&](writer& w) { encode(w, value); });  // an encoding error propagates, nothing stored
  ++unfinished_;
  ec.clear();
  serve(lock);
}

void queue_owner::get(decode_fn decode, void* value, deadline until, std::error_code& ec) {
  std::unique_lock lock{mutex_};
  if (!changed_.wait_until(lock, until, [&] { return !store_.empty() || finished(); })) {
    ec = make_error_code(errc::empty);
    return;
  }
  if (store_.empty()) {
    ec = make_error_code(finished_code());
    return;
  }
  auto decoder = [&](std::span<const std::byte> bytes) { decode(bytes, value); };
  // A large record is decoded unlocked: puts, remote consumers and other local gets go on
  // meanwhile. Until it is decoded it still counts (for room, and against finishing) as stored.
  if (store_.front_is_small()) ec = store_.pop_front(decoder);
  else ec = store_.decode_front_unlocked(lock, taking_, decoder, until, [&] { ready_.update(!store_.empty()); });
  serve(lock);
}

std::size_t queue_owner::qsize(std::error_code& ec) {
  std::lock_guard lock{mutex_};
  ec.clear();
  return store_.size();
}

void queue_owner::close(std::error_code& ec) {
  std::unique_lock lock{mutex_};
  ec.clear();
  if (closed_) return;
  closed_ = true;
  std::uint8_t what = 1;
  for (auto& s : sessions_) s->conn->send(wire::kind::notice, 0, std::as_bytes(std::span{&what, 1}));
  serve(lock);
}

void queue_owner::task_done(std::error_code& ec) {
  std::unique_lock lock{mutex_};
  if (unfinished_ == 0) {
    ec = make_error_code(errc::invalid_argument);  // Python: "task_done() called too many times"
    return;
  }
  ec.clear();
  --unfinished_;
  serve(lock);
}

void queue_owner::join(deadline until, std::error_code& ec) {
  std::unique_lock lock{mutex_};
  if (!changed_.wait_until(lock, until, [&] { return unfinished_ == 0; })) ec = make_error_code(errc::timeout);
  else ec.clear();
}

bool queue_owner::no_writers() const noexcept {
  if (local_writer_ || !tickets_.empty()) return false;
  return std::none_of(sessions_.begin(), sessions_.end(), [](const session_ptr& s) { return s->writer; });
}

std::shared_ptr<void> queue_owner::writer_presence() {
  std::lock_guard lock{mutex_};
  if (auto p = local_presence_.lock()) return p;
  local_writer_ = true;
  std::weak_ptr<queue_owner> weak = weak_from_this();
  // Not an owning pointer: its "deleter" marks the moment the last local writer handle went.
  std::shared_ptr<void> p{static_cast<void*>(this), [weak](void*) {
                            if (auto self = weak.lock()) {
                              std::unique_lock l{self->mutex_};
                              self->local_writer_ = false;
                              self->serve(l);
                            }
                          }};
  local_presence_ = p;
  return p;
}

void queue_owner::ticket_issued(std::uint64_t id) {
  if (early_redeems_.erase(id) == 0) tickets_.insert(id);
}

void queue_owner::ticket_gone(std::uint64_t id, bool redeemed) {
  // A redeem can overtake its issue (they travel on different connections); the issuer's own
  // presence keeps the writer count above zero meanwhile.
  if (tickets_.erase(id) == 0 && redeemed) early_redeems_.insert(id);
}

std::uint64_t queue_owner::issue_ticket() {
  std::uint64_t id = new_ticket_id();
  std::lock_guard lock{mutex_};
  ticket_issued(id);
  return id;
}

void queue_owner::redeem_ticket(std::uint64_t ticket) {
  std::unique_lock lock{mutex_};
  ticket_gone(ticket, true);
  serve(lock);
}

void queue_owner::release_ticket(std::uint64_t ticket) {
  std::unique_lock lock{mutex_};
  ticket_gone(ticket, false);
  serve(lock);
}

int queue_owner::watch(std::error_code& ec) {
  std::lock_guard lock{mutex_};
  return ready_.watch(!store_.empty() || finished(), ec);
}

void queue_owner::unwatch() noexcept {
  std::lock_guard lock{mutex_};
  ready_.unwatch();
}

// ---- sessions ---------------------------------------------------------------------------

queue_owner::session_ptr queue_owner::attach(const std::shared_ptr<connection>& conn) {
  auto s = std::make_shared<session>();
  s->conn = conn;
  std::lock_guard lock{mutex_};
  sessions_.push_back(s);
  auto welcome = to_bytes(wire::welcome_message{maxsize_, closed_});
  std::error_code ec;
  s->consumed = shared_counter::create(ec);
  if (s->consumed) conn->send_first_with_fd(wire::kind::welcome, welcome, s->consumed->fd(), ec);
  if (!s->consumed || ec) {  // no shared memory: still serve, without recovery after a crash
    s->consumed.reset();
    conn->send(wire::kind::welcome, 0, welcome);
  }
  return s;
}

void queue_owner::on_frame(const session_ptr& s, const wire::header& h, std::span<const std::byte> payload,
                           fd_set_owned& fds) {
  auto k = static_cast<wire::kind>(h.kind);
  if (k == wire::kind::data || k == wire::kind::give_back) {
    if (h.type_id != token_.type_id) {
      // Cannot happen through the typed API (hello checks T); a foreign or broken peer.
      s->conn->send_message(wire::kind::refused, wire::status_message{static_cast<std::int32_t>(errc::wrong_type),
                                                                      "data of another type on queue of " + type_name_});
      s->conn->close();
      return;
    }
    std::error_code ec;
    std::size_t n = wire::record_cursor::count(payload, ec, fds.size());
    if (ec) {
      s->conn->close();
      return;
    }
    std::unique_lock lock{mutex_};
    std::vector<std::byte> bytes(payload.begin(), payload.end());
    if (k == wire::kind::data) {
      store_.append_batch(std::move(bytes), n, std::move(fds));
      unfinished_ += n;
      std::size_t used = std::min(n, s->credits);
      s->credits -= used;
      credits_out_ -= used;
    } else {
      s->given_back += n;
      store_.prepend_batch(std::move(bytes), n, std::move(fds));
    }
    serve(lock);
    return;
  }
  if (k == wire::kind::want) {
    std::uint32_t want = 0;
    if (payload.size() != sizeof want) return s->conn->close();
    std::memcpy(&want, payload.data(), sizeof want);
    std::unique_lock lock{mutex_};
    if (s->want == 0) waiting_.push_back(s);
    s->want = std::max<std::uint32_t>(want, 1);
    serve(lock);
    return;
  }
  if (k == wire::kind::request) {
    wire::request_message r;
    if (!wire::try_decode(payload, r)) return s->conn->close();
    return on_request(s, r);
  }
  s->conn->close();  // a frame only the owner sends: a confused peer
}

void queue_owner::on_request(const session_ptr& s, const wire::request_message& r) {
  std::error_code ec;
  switch (static_cast<wire::op>(r.what)) {
    case wire::op::qsize: {
      std::lock_guard lock{mutex_};
      return reply(s, r.id, errc{}, store_.size());
    }
    case wire::op::close:
      close(ec);
      return reply(s, r.id, errc{});
    case wire::op::task_done:
      task_done(ec);
      return reply(s, r.id, ec ? static_cast<errc>(ec.value()) : errc{});
    case wire::op::join: {
      std::unique_lock lock{mutex_};
      s->joins.push_back(r.id);
      return serve(lock);
    }
    case wire::op::credit: {
      std::unique_lock lock{mutex_};
      if (s->credit_requests.empty()) credit_waiting_.push_back(s);
      s->credit_requests.push_back(r.id);
      return serve(lock);
    }
    case wire::op::sync:
      return reply(s, r.id, errc{});
    case wire::op::writer: {
      std::unique_lock lock{mutex_};
      s->writer = r.arg != 0;
      return serve(lock);
    }
    case wire::op::ticket_issue: {
      std::unique_lock lock{mutex_};
      ticket_issued(r.arg);
      return serve(lock);
    }
    case wire::op::ticket_redeem:
      return redeem_ticket(r.arg);
    case wire::op::ticket_release:
      return release_ticket(r.arg);
  }
  reply(s, r.id, errc::invalid_argument);
}

void queue_owner::reply(const session_ptr& s, std::uint64_t id, errc code, std::uint64_t value) {
  s->conn->send_message(wire::kind::reply, wire::reply_message{id, static_cast<std::int32_t>(code), value});
}

void queue_owner::recover_unconsumed(session& s) {
  if (!s.consumed) return;
  std::uint64_t taken = s.consumed->value().load(std::memory_order_acquire);
  if (taken + s.given_back >= s.sent) return;
  std::uint64_t missing = s.sent - taken - s.given_back;
  auto& last = s.last_batch;
  if (missing > last.count) missing = last.count;  // a lying peer cannot make us invent records
  // The last `missing` records of the last batch were never taken: back to the front.
  record_store batch;
  batch.append_batch(std::move(last.bytes), last.count, std::move(last.fds));
  for (std::uint64_t taken_here = last.count - missing; taken_here > 0; --taken_here) batch.pop();
  auto rest = batch.drain();
  for (auto it = rest.rbegin(); it != rest.rend(); ++it) store_.prepend(std::move(*it));
  last = {};
}

void queue_owner::on_close(const session_ptr& s) {
  std::unique_lock lock{mutex_};
  s->gone = true;
  s->writer = false;
  recover_unconsumed(*s);
  credits_out_ -= s->credits;  // slots it was granted and never used are free again
  s->credits = 0;
  sessions_.remove(s);
  serve(lock);
}

void queue_owner::serve(std::unique_lock<std::mutex>& lock) {
  // Consumers waiting in other processes, in the order they asked.
  while (!waiting_.empty() && (!store_.empty() || finished())) {
    auto s = waiting_.front().lock();
    waiting_.pop_front();
    if (!s || s->gone || s->want == 0) continue;
    if (store_.empty()) {  // closed and drained, or no writer left
      errc code = finished_code();
      s->conn->send_message(wire::kind::status,
                            wire::status_message{static_cast<std::int32_t>(code),
                                                 code == errc::closed ? "queue closed" : "no writer left"});
    } else {
      record_store::chunk batch;
      std::size_t n = store_.take(s->want, max_batch_bytes, batch);
      // The consumer gets duplicates of a standalone record's descriptors; the originals stay
      // with last_batch until it asks again (without them it gets the originals, and the
      // record cannot be recovered if it dies).
      std::error_code dup_failed;
      fd_set_owned sent_fds = batch.fds.duplicate(dup_failed);
      if (dup_failed) sent_fds = std::move(batch.fds);
      s->conn->send(wire::kind::batch, token_.type_id, batch.bytes, std::move(sent_fds));
      // A consumer asks again only once it took everything it had: only this batch can be
      // partly taken when it dies.
      s->sent += n;
      if (dup_failed) batch.count = 0;
      s->last_batch = std::move(batch);
    }
    s->want = 0;
  }
  // Producers in other processes waiting for room in a bounded queue.
  while (!credit_waiting_.empty() && (has_room() || closed_)) {
    auto s = credit_waiting_.front().lock();
    credit_waiting_.pop_front();
    if (!s || s->gone || s->credit_requests.empty()) continue;
    std::uint64_t id = s->credit_requests.front();
    s->credit_requests.pop_front();
    if (closed_) {
      reply(s, id, errc::closed);
    } else {
      ++s->credits;
      ++credits_out_;
      reply(s, id, errc{}, 1);
    }
    if (!s->credit_requests.empty()) credit_waiting_.push_back(s);
  }
  ready_.update(!store_.empty() || finished());
  if (unfinished_ == 0) {
    for (auto& s : sessions_) {
      for (auto id : s->joins) reply(s, id, errc{});
      s->joins.clear();
    }
  }
  lock.unlock();
  changed_.notify_all();
}

}  // namespace mproc::detail
