#include "mproc/semaphore.hpp"

#include <algorithm>

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

}  // namespace

semaphore semaphore::create_with(unsigned value, bool bounded) {
  semaphore s;
  s.block_ = detail::sync_block::create(sizeof(semaphore_state));
  auto& st = s.block_.state<semaphore_state>();
  st.value = value;
  st.bound = bounded ? static_cast<std::int64_t>(value) : -1;
  return s;
}

semaphore semaphore::create(unsigned value) { return create_with(value, false); }

semaphore semaphore::attach(shared_memory memory) {
  semaphore s;
  s.block_ = detail::sync_block::attach(std::move(memory), sizeof(semaphore_state));
  return s;
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
      s.holders.add(me);
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

std::optional<acquired> semaphore::acquire(duration timeout) {
  std::error_code ec;
  auto r = acquire(timeout, ec);
  throw_if(ec, "mproc::semaphore::acquire");
  return r;
}

acquired semaphore::acquire(std::error_code& ec) { return acquire(duration::max(), ec).value_or(acquired::normally); }

acquired semaphore::acquire() {
  std::error_code ec;
  auto r = acquire(duration::max(), ec);
  throw_if(ec, "mproc::semaphore::acquire");
  return *r;
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

void semaphore::release() {
  std::error_code ec;
  release(ec);
  throw_if(ec, "mproc::semaphore::release");
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
