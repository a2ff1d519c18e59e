#include "mproc/condition.hpp"

#include <limits>

#include "process_identity.hpp"

namespace mproc {
namespace {

// Python's Condition gives each waiter a lock of its own and notify releases the oldest ones.
// Here each waiter has an entry, notify marks the oldest live ones and wakes everybody, and each
// waiter looks at its own entry: so a killed waiter cannot swallow a notification.
struct waiter {
  std::uint64_t ticket;  // 0: free entry; otherwise the order of arrival
  detail::process_identity who;
  std::uint32_t notified;
};

constexpr std::size_t max_waiters = 64;

struct condition_state {
  std::uint64_t next_ticket;
  waiter waiters[max_waiters];
};

/// The oldest waiting entry not yet notified whose process still runs, or nullptr.
waiter* oldest_waiting(condition_state& s) {
  waiter* best = nullptr;
  for (auto& w : s.waiters)
    if (w.ticket != 0 && w.notified == 0 && (best == nullptr || w.ticket < best->ticket)) best = &w;
  return best;
}

/// A free entry; failing that, the entry of a waiter that was killed.
waiter* free_entry(condition_state& s) {
  for (auto& w : s.waiters)
    if (w.ticket == 0) return &w;
  for (auto& w : s.waiters)
    if (!detail::still_running(w.who)) return &w;
  return nullptr;
}

}  // namespace

condition condition::create() { return condition{detail::sync_block::create(sizeof(condition_state))}; }

condition condition::attach(shared_memory memory) {
  return condition{detail::sync_block::attach(std::move(memory), sizeof(condition_state))};
}

bool condition::wait(duration timeout, std::error_code& ec) {
  if (!valid() || !get_lock().held_by_this_thread()) return ec = make_error_code(errc::invalid_argument), false;
  auto& s = block_.state<condition_state>();
  waiter* mine = free_entry(s);
  if (mine == nullptr) return ec = make_error_code(errc::invalid_argument), false;
  ec.clear();
  *mine = {++s.next_ticket, detail::this_process(), 0};
  auto until = detail::deadline_after(timeout);
  while (mine->notified == 0 && std::chrono::steady_clock::now() < until) block_.wait(until);
  bool notified = mine->notified != 0;
  mine->ticket = 0;
  return notified;
}

bool condition::wait(duration timeout) {
  std::error_code ec;
  bool r = wait(timeout, ec);
  throw_if(ec, "mproc::condition::wait");
  return r;
}

void condition::notify(std::size_t n, std::error_code& ec) {
  if (!valid() || !get_lock().held_by_this_thread()) return void(ec = make_error_code(errc::invalid_argument));
  ec.clear();
  auto& s = block_.state<condition_state>();
  std::size_t woken = 0;
  while (woken < n) {
    waiter* w = oldest_waiting(s);
    if (w == nullptr) break;
    if (!detail::still_running(w->who)) {
      w->ticket = 0;  // killed while waiting: its entry is free again
      continue;
    }
    w->notified = 1;
    ++woken;
  }
  if (woken > 0) block_.notify_all();
}

void condition::notify(std::size_t n) {
  std::error_code ec;
  notify(n, ec);
  throw_if(ec, "mproc::condition::notify");
}

void condition::notify_all(std::error_code& ec) { notify(std::numeric_limits<std::size_t>::max(), ec); }

void condition::notify_all() { notify(std::numeric_limits<std::size_t>::max()); }

}  // namespace mproc
