#include "mproc/semaphore.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "../hold_across_fork.hpp"
#include "mproc/bounded_semaphore.hpp"
#include "process_identity.hpp"
#include "holder_table.hpp"

namespace mproc {
namespace {

using detail::holder_table;

struct semaphore_state {
  std::int64_t value;
  std::int64_t bound;     // < 0: unbounded
  std::int64_t orphaned;  // units returned by dead holders and not handed out again
  holder_table holders;
};

/// Returns the units of holders that died; they go to the next acquirers, who are told.
void take_back_from_dead(semaphore_state& s) {
  auto units = s.holders.drop_dead();
  if (units == 0) return;
  auto room = s.bound < 0 ? units : std::max<std::int64_t>(0, std::min(units, s.bound - s.value));
  s.value += room;
  s.orphaned += room;
}

/// This process let go of its last handle: what it took and did not give back stays taken (a
/// semaphore used as a signal is consumed). Only a process that dies holding gives units back.
void keep_what_this_process_took(void* base) {
  std::error_code ec;
  if (!lock::acquire_at(base, lock::duration::max(), ec)) return;  // the lock is at the base
  detail::sync_block::state_at<semaphore_state>(base).holders.forget(detail::this_process());
  lock::release_at(base, ec);
}

/// The semaphores in which this process took units. A fork child ends with its parent's handles
/// still mapped, so their last handle never goes: keep_units_of_this_process walks this list.
struct taken_from {
  std::mutex mutex;
  std::vector<std::weak_ptr<detail::shm_mapping>> blocks;

  void remember(const shared_memory& m) {
    auto mine = m.observe();
    std::lock_guard g{mutex};
    std::erase_if(blocks, [](const auto& w) { return w.expired(); });
    for (const auto& w : blocks)
      if (!w.owner_before(mine) && !mine.owner_before(w)) return;
    blocks.push_back(std::move(mine));
  }
};

// The forking thread holds its mutex across every fork (new_held_across_fork), so a fork child
// never inherits it from a thread it does not have. Taking it for a fork cannot deadlock: under
// it remember() and keep_units_of_this_process() only edit the list (weak references: no block
// is unmapped under it). acquire() calls remember() holding the semaphore's lock in shared
// memory, but a forking thread cannot be holding that one: only semaphore calls take it, and
// none of them forks.
taken_from* const taken = detail::new_held_across_fork(&taken_from::mutex);

}  // namespace

void semaphore::keep_units_of_this_process() noexcept {
  auto& t = *taken;
  std::vector<std::weak_ptr<detail::shm_mapping>> blocks;
  {
    std::lock_guard g{t.mutex};  // not held below: acquire() takes a block's lock, then this one
    blocks.swap(t.blocks);
  }
  for (const auto& w : blocks)
    if (auto m = w.lock()) keep_what_this_process_took(m->addr);
}

semaphore::semaphore(detail::sync_block block) : block_(std::move(block)) {
  // Every handle watches its block: its last one going means this process let go normally.
  block_.memory().before_unmap(keep_what_this_process_took);
}

semaphore semaphore::create_with(unsigned value, bool bounded) {
  semaphore s{detail::sync_block::create(sizeof(semaphore_state))};
  auto& st = s.block_.state<semaphore_state>();
  st.value = value;
  st.bound = bounded ? static_cast<std::int64_t>(value) : -1;
  return s;
}

semaphore semaphore::create(unsigned value) { return create_with(value, false); }

semaphore semaphore::attach(shared_memory memory) {
  return semaphore{detail::sync_block::attach(std::move(memory), sizeof(semaphore_state))};
}

bool semaphore::bounded() {
  auto held = block_.guard_lock().hold();
  return block_.state<semaphore_state>().bound >= 0;
}

std::optional<acquired> semaphore::acquire(duration timeout, std::error_code& ec) {
  if (!valid()) return ec = make_error_code(errc::invalid_argument), std::nullopt;
  ec.clear();
  auto until = detail::deadline_after(timeout);
  auto me = detail::this_process();
  auto& l = block_.guard_lock();
  l.acquire();
  auto& s = block_.state<semaphore_state>();
  for (;;) {
    if (s.value == 0) take_back_from_dead(s);
    if (s.value > 0) {
      --s.value;
      if (s.holders.add(me)) taken->remember(memory());  // first unit here
      auto how = acquired::normally;
      if (s.orphaned > 0) --s.orphaned, how = acquired::after_owner_died;
      l.release();
      return how;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    block_.wait(until);
  }
  l.release();
  return std::nullopt;
}

void semaphore::release(std::error_code& ec) {
  if (!valid()) return void(ec = make_error_code(errc::invalid_argument));
  {
    auto held = block_.guard_lock().hold();
    auto& s = block_.state<semaphore_state>();
    if (s.bound >= 0 && s.value >= s.bound) return void(ec = make_error_code(errc::invalid_argument));
    ++s.value;
    s.holders.remove(detail::this_process());
  }
  ec.clear();
  block_.notify_all();
}

std::size_t semaphore::get_value() {
  auto held = block_.hold("mproc::semaphore");
  return static_cast<std::size_t>(block_.state<semaphore_state>().value);
}

bounded_semaphore bounded_semaphore::create(unsigned value) { return bounded_semaphore{create_with(value, true)}; }

bounded_semaphore bounded_semaphore::attach(shared_memory memory) {
  bounded_semaphore b{semaphore::attach(std::move(memory))};
  if (!b.bounded()) throw error(errc::bad_message, "mproc::bounded_semaphore: the block holds an unbounded semaphore");
  return b;
}

}  // namespace mproc
