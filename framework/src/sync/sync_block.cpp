#include "mproc/detail/sync_block.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <ctime>
#include <string>

namespace mproc::detail {
namespace {

// The lock, then the wake-up word on a cache line of its own, then the state.
constexpr std::size_t line = 64;
std::size_t wake_offset() noexcept { return lock::footprint(); }
std::size_t state_offset() noexcept { return wake_offset() + line; }

std::atomic<std::uint32_t>& word_at(void* p) noexcept { return *static_cast<std::atomic<std::uint32_t>*>(p); }

}  // namespace

sync_block sync_block::create(std::size_t state_size, mutex_kind kind) {
  sync_block b;
  b.memory_ = shared_memory::create(state_offset() + state_size);
  b.lock_ = lock::create_in(b.memory_, 0, kind);
  new (b.wake_word()) std::atomic<std::uint32_t>{0};
  return b;
}

sync_block sync_block::attach(shared_memory memory, std::size_t state_size) {
  if (memory.size() < state_offset() + state_size) throw error(errc::bad_message, "mproc sync primitive: block too small");
  sync_block b;
  b.lock_ = lock::attach(memory, 0);
  b.memory_ = std::move(memory);
  return b;
}

void* sync_block::state_address(void* base) noexcept { return static_cast<char*>(base) + state_offset(); }
void* sync_block::wake_word() const noexcept { return static_cast<char*>(memory_.data()) + wake_offset(); }

lock_guard sync_block::hold(const char* who) {
  if (!valid()) throw error(errc::invalid_argument, std::string{who} + ": empty handle");
  return lock_.hold();
}

acquired sync_block::wait(deadline until) {
  auto& word = word_at(wake_word());
  // Read under the lock: a notify_all after our release changes it, so the futex will not sleep.
  std::uint32_t seen = word.load(std::memory_order_acquire);
  lock_.release();
  auto now = std::chrono::steady_clock::now();
  auto slice = std::min<std::chrono::steady_clock::duration>(recheck_period, until > now ? until - now : now - now);
  if (slice > slice.zero()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count();
    timespec rel{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    // Not FUTEX_PRIVATE: the word is shared between processes. EINTR, EAGAIN and ETIMEDOUT all
    // mean "look at the state again", which the caller does.
    ::syscall(SYS_futex, &word, FUTEX_WAIT, seen, &rel, nullptr, 0);
  }
  return lock_.acquire();
}

void sync_block::notify_all() noexcept {
  auto& word = word_at(wake_word());
  word.fetch_add(1, std::memory_order_acq_rel);
  ::syscall(SYS_futex, &word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace mproc::detail
