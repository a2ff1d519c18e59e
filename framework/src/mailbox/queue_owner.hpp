// Internal: a queue in the process that created it — the one authoritative store and count.
//
// Local handles call put/get/... directly (a mutex and a condition variable, no syscalls); a
// local get decodes the record it took outside the lock, and puts it back first when its body
// was still being written at its deadline (errc::timeout).
// Each other process that holds a handle has one session: a connection on which it sends data
// frames (puts), wants (gets: "up to k records"), give-backs and requests, and receives
// batches, statuses, replies and the closed notice. See docs/mailboxes.md for the protocol.
//
// Thread safety: every member from any thread; session callbacks run on the I/O thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <list>
#include <set>
#include <memory>
#include <mutex>
#include <string>

#include "connection.hpp"
#include "mproc/detail/queue_core.hpp"
#include "ready_signal.hpp"
#include "shared_counter.hpp"
#include "record_store.hpp"

namespace mproc::detail {

class queue_owner final : public queue_core, public std::enable_shared_from_this<queue_owner> {
 public:
  queue_owner(queue_token token, std::string type_name, std::size_t maxsize);

  void put(encode_fn encode, const void* value, deadline until, std::error_code& ec) override;
  void get(decode_fn decode, void* value, deadline until, std::error_code& ec) override;
  std::size_t qsize(std::error_code& ec) override;
  std::size_t maxsize() const noexcept override { return maxsize_; }
  void close(std::error_code& ec) override;
  void task_done(std::error_code& ec) override;
  void join(deadline until, std::error_code& ec) override;
  bool flush(deadline) override { return true; }
  const queue_token& token() const noexcept override { return token_; }
  const std::string& type_name() const noexcept { return type_name_; }
  int watch(std::error_code& ec) override;
  void unwatch() noexcept override;
  std::shared_ptr<void> writer_presence() override;
  std::uint64_t issue_ticket() override;
  void redeem_ticket(std::uint64_t ticket) override;
  void release_ticket(std::uint64_t ticket) override;

  struct session;
  using session_ptr = std::shared_ptr<session>;
  /// A process opened the queue (hello already checked): welcomes it. Its later frames go to
  /// on_frame, the end of its connection to on_close (both on the I/O thread).
  session_ptr attach(const std::shared_ptr<connection>& conn);
  void on_frame(const session_ptr& s, const wire::header& h, std::span<const std::byte> payload, fd_set_owned& fds);
  void on_close(const session_ptr& s);

  struct session {
    std::shared_ptr<connection> conn;
    std::uint32_t want = 0;     // records asked for and not yet sent (0: no want pending)
    std::size_t credits = 0;    // put slots granted (bounded queues) and not yet used
    std::deque<std::uint64_t> credit_requests;  // ids waiting for a slot
    std::deque<std::uint64_t> joins;            // ids waiting for unfinished == 0
    bool gone = false;
    bool writer = false;  // that process holds a handle that can put
    // What a consumer that dies without a goodbye did not take: see shared_counter.hpp.
    std::shared_ptr<shared_counter> consumed;  // its get() count, in shared memory
    std::uint64_t sent = 0;                     // records sent to it in batches
    std::uint64_t given_back = 0;               // records it gave back
    record_store::chunk last_batch;             // the records of the last batch sent
  };

 private:
  void on_request(const session_ptr& s, const wire::request_message& r);
  /// Answers whatever the current state allows: wants, credit requests, joins; wakes locals.
  void serve(std::unique_lock<std::mutex>& lock);
  bool has_room() const noexcept { return maxsize_ == 0 || store_.size() + taking_ + credits_out_ < maxsize_; }
  bool no_writers() const noexcept;
  /// Nothing to take now, and nothing will come: closed, or no writer left.
  bool finished() const noexcept { return store_.empty() && taking_ == 0 && (closed_ || no_writers()); }
  errc finished_code() const noexcept { return closed_ ? errc::closed : errc::end_of_stream; }
  void ticket_issued(std::uint64_t id);
  void ticket_gone(std::uint64_t id, bool redeemed);
  static void reply(const session_ptr& s, std::uint64_t id, errc code, std::uint64_t value = 0);
  /// On a connection's end: puts back what was sent to it and neither taken nor given back.
  void recover_unconsumed(session& s);

  const queue_token token_;
  const std::string type_name_;
  const std::size_t maxsize_;

  std::mutex mutex_;
  std::condition_variable changed_;  // local waiters: data, room, close, joins
  record_store store_;
  std::size_t taking_ = 0;  // records local gets took from store_ and are decoding
  std::size_t credits_out_ = 0;  // slots granted to remote producers, not yet used
  std::uint64_t unfinished_ = 0;  // put minus task_done
  bool closed_ = false;
  ready_signal ready_;  // readable while a local get would not block
  // Writers: this process's handles that can put, sessions of processes that hold such handles,
  // and writer handles in flight (tickets). A redeem that overtook its issue is remembered.
  std::weak_ptr<void> local_presence_;
  bool local_writer_ = false;
  std::set<std::uint64_t> tickets_;
  std::set<std::uint64_t> early_redeems_;
  std::list<session_ptr> sessions_;
  std::deque<std::weak_ptr<session>> waiting_;  // sessions with a pending want, FIFO
  std::deque<std::weak_ptr<session>> credit_waiting_;  // sessions waiting for a slot, FIFO
};

}  // namespace mproc::detail
