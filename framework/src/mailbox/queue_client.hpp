// Internal: a queue as seen from a process other than its owner — one connection per process
// and queue, shared by every handle of that process.
//
// put: appends a record to the connection (group commit; no round trip). A bounded queue first
// takes a slot granted by the owner (one round trip when none is at hand).
// get: takes the next record from the inbox; when the inbox is empty, asks the owner for up to
// k records and waits. k adapts: it doubles while this process drains its batches quickly and
// drops back to 1 when it is slow, so a fast consumer gets throughput and slow consumers share
// the work fairly. A get decodes the record it took outside the lock (see get()); a body still
// being written at its deadline leaves the record first in the inbox (errc::timeout).
//
// Thread safety: every member from any thread. Destructor: gives back fetched records that
// were not consumed, waits (bounded) until earlier puts reached the owner, closes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

#include "connection.hpp"
#include "mproc/detail/queue_core.hpp"
#include "ready_signal.hpp"
#include "shared_counter.hpp"
#include "record_store.hpp"

namespace mproc::detail {

class queue_client final : public queue_core {
 public:
  /// `consumed`: the counter the owner reads if this process dies (may be null).
  queue_client(queue_token token, std::shared_ptr<connection> conn, const wire::welcome_message& welcome,
               std::shared_ptr<shared_counter> consumed);
  ~queue_client() override;

  /// Starts receiving; call once, right after construction.
  void start();

  void put(encode_fn encode, const void* value, deadline until, std::error_code& ec) override;
  void get(decode_fn decode, void* value, deadline until, std::error_code& ec) override;
  std::size_t qsize(std::error_code& ec) override;
  std::size_t maxsize() const noexcept override { return maxsize_; }
  void close(std::error_code& ec) override;
  void task_done(std::error_code& ec) override;
  void join(deadline until, std::error_code& ec) override;
  /// A round trip: the owner answers after it has stored every earlier put of this process.
  bool flush(deadline until) override;
  const queue_token& token() const noexcept override { return token_; }
  int watch(std::error_code& ec) override;
  void unwatch() noexcept override;
  std::shared_ptr<void> writer_presence() override;
  std::uint64_t issue_ticket() override;
  void redeem_ticket(std::uint64_t ticket) override;
  void release_ticket(std::uint64_t ticket) override;
  /// Ends the connection (runtime shutdown).
  void disconnect() noexcept { conn_->close(); }

 private:
  struct pending_reply {
    bool done = false;
    std::int32_t code = 0;
    std::uint64_t value = 0;
  };
  void on_frame(const wire::header& h, std::span<const std::byte> payload, fd_set_owned& fds);
  void on_close(std::error_code ec);
  /// Sends a request and waits for its reply (or the deadline: errc::timeout).
  std::uint64_t call(wire::op what, std::uint64_t arg, deadline until, std::error_code& ec);
  /// The error for a dead connection.
  std::error_code broken_locked() const noexcept;
  /// When the inbox is empty and nothing is on its way: asks the owner for up to k_ records.
  void ask_for_more_locked();
  /// A get would not wait: it is its turn, and there is a record or an end.
  bool ready_locked() const noexcept { return !taking_ && (!inbox_.empty() || final_ || dead_); }

  const queue_token token_;
  const std::shared_ptr<connection> conn_;
  const std::size_t maxsize_;

  std::mutex mutex_;
  std::condition_variable changed_;
  record_store inbox_;
  bool want_out_ = false;
  std::size_t taking_ = 0;  // gets decoding a record taken from the inbox (they take turns: 0 or 1)
  bool ask_after_taking_ = false;  // ask_for_more_locked() was called meanwhile
  std::uint32_t k_ = 1;
  std::chrono::steady_clock::time_point batch_arrived_{};
  std::error_code final_;    // closed and drained (from the owner's status)
  bool closed_ = false;      // the owner announced close(): puts fail from now on
  bool dead_ = false;        // the connection ended
  std::error_code dead_reason_;
  std::size_t credits_ = 0;  // bounded queues: slots at hand
  std::uint64_t credit_request_ = 0;  // id of the outstanding slot request, 0 if none
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, pending_reply> replies_;
  ready_signal ready_;
  std::shared_ptr<shared_counter> consumed_;
  std::weak_ptr<void> presence_;  // this process's writer presence
  std::uint64_t consumed_total_ = 0;  // records get() returned (mirrored into consumed_)
};

}  // namespace mproc::detail
