#include "mproc/barrier.hpp"

#include <cstring>
#include <string>

#include "holder_table.hpp"
#include "mproc/entry.hpp"
#include "process_identity.hpp"

namespace mproc {
namespace {

// threading.Barrier's states.
enum : std::int32_t { filling = 0, draining = 1, resetting = -1, broken_state = -2 };

struct barrier_state {
  std::uint64_t parties;
  std::uint64_t count;  // waiters inside wait(), this passage
  std::int32_t state;
  std::int64_t timeout_ns;  // the default timeout; < 0: none
  char action[128];         // the action's entry name; empty: none
  detail::holder_table waiting;
};

void break_barrier(barrier_state& s) { s.state = broken_state; }

/// A waiter left: once the last one of a passage (or of a reset) is out, a new one may begin.
void leave(barrier_state& s, std::uint64_t n = 1) {
  s.count -= n;
  if (s.count == 0 && (s.state == draining || s.state == resetting)) s.state = filling;
}

/// Removes waiters whose process died. One lost while the group was gathering breaks the barrier:
/// the group it belonged to can no longer pass as one.
void drop_dead(barrier_state& s) {
  auto dead = static_cast<std::uint64_t>(s.waiting.drop_dead());
  if (dead == 0) return;
  if (s.state == filling) break_barrier(s);
  leave(s, dead);
}

void run_action(const barrier_state& s) {
  if (s.action[0] == '\0') return;
  const auto* e = detail::find_entry_by_name(detail::entry_kind::function, s.action);
  if (e == nullptr) throw error(errc::unknown_entry, std::string{"mproc::barrier action "} + s.action);
  e->invoke(e->fn, {});
}

}  // namespace

barrier barrier::create(std::size_t parties, void (*action)(), duration timeout) {
  if (parties == 0) throw error(errc::invalid_argument, "mproc::barrier: zero parties");
  std::string name;
  if (action != nullptr) {
    const auto* e = detail::find_entry_by_fn(detail::fn_address(action));
    if (e == nullptr) throw error(errc::unknown_entry, "mproc::barrier: the action is not registered (MPROC_ENTRY)");
    name = e->name;
  }
  barrier b{detail::sync_block::create(sizeof(barrier_state))};
  auto& s = b.block_.state<barrier_state>();
  if (name.size() >= sizeof s.action) throw error(errc::invalid_argument, "mproc::barrier: action name too long");
  std::memcpy(s.action, name.c_str(), name.size() + 1);
  s.parties = parties;
  s.timeout_ns = timeout == duration::max() ? -1 : std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  return b;
}

barrier barrier::attach(shared_memory memory) {
  return barrier{detail::sync_block::attach(std::move(memory), sizeof(barrier_state))};
}

std::size_t barrier::wait(duration timeout, std::error_code& ec) {
  if (!valid()) return ec = make_error_code(errc::invalid_argument), 0;
  auto until = detail::deadline_after(timeout);
  auto me = detail::this_process();
  auto held = block_.guard_lock().hold();
  auto& s = block_.state<barrier_state>();
  drop_dead(s);
  // Wait while the previous group is still leaving (threading.Barrier._enter: no timeout).
  while (s.state == draining || s.state == resetting) {
    block_.wait(detail::forever);
    drop_dead(s);
  }
  if (s.state == broken_state) return ec = make_error_code(errc::broken_barrier), 0;
  auto index = s.count++;
  s.waiting.add(me);
  struct leaving {  // whatever happens below, this waiter leaves the passage
    barrier_state& s;
    detail::process_identity me;
    detail::sync_block& block;
    ~leaving() {
      s.waiting.remove(me);
      leave(s);
      block.notify_all();
    }
  } on_exit{s, me, block_};
  if (index + 1 == s.parties) {
    try {
      run_action(s);
    } catch (...) {
      break_barrier(s);
      throw;
    }
    s.state = draining;
  } else {
    while (s.state == filling) {
      if (std::chrono::steady_clock::now() >= until) {
        break_barrier(s);
        break;
      }
      block_.wait(until);
      drop_dead(s);
    }
  }
  if (s.state == broken_state || s.state == resetting) return ec = make_error_code(errc::broken_barrier), 0;
  ec.clear();
  return static_cast<std::size_t>(index);
}

std::size_t barrier::wait(duration timeout) {
  std::error_code ec;
  auto index = wait(timeout, ec);
  throw_if(ec, "mproc::barrier::wait");
  return index;
}

std::size_t barrier::wait() {
  std::int64_t ns;
  {
    auto held = block_.hold("mproc::barrier");
    ns = block_.state<barrier_state>().timeout_ns;
  }
  return wait(ns < 0 ? duration::max() : std::chrono::duration_cast<duration>(std::chrono::nanoseconds{ns}));
}

void barrier::reset() {
  {
    auto held = block_.hold("mproc::barrier");
    auto& s = block_.state<barrier_state>();
    if (s.count > 0) {
      if (s.state == filling || s.state == broken_state) s.state = resetting;
    } else {
      s.state = filling;
    }
  }
  block_.notify_all();
}

void barrier::abort() {
  {
    auto held = block_.hold("mproc::barrier");
    break_barrier(block_.state<barrier_state>());
  }
  block_.notify_all();
}

std::size_t barrier::parties() {
  auto held = block_.hold("mproc::barrier");
  return static_cast<std::size_t>(block_.state<barrier_state>().parties);
}

std::size_t barrier::n_waiting() {
  auto held = block_.hold("mproc::barrier");
  auto& s = block_.state<barrier_state>();
  return s.state == filling ? static_cast<std::size_t>(s.count) : 0;
}

bool barrier::broken() {
  auto held = block_.hold("mproc::barrier");
  return block_.state<barrier_state>().state == broken_state;
}

}  // namespace mproc
