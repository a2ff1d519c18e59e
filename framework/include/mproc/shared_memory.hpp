// mproc/shared_memory.hpp — a block of anonymous shared memory (multiprocessing.shared_memory,
// without a name).
//
//   auto block = mproc::shared_memory::create(4096);   // zero-filled
//   node.spawn(fill, block);                            // the child maps the same pages
//
// The block is a memfd: nothing appears in /dev/shm or anywhere else, and the kernel frees it
// when the last process holding it exits, SIGKILL included. It travels to a child as an
// argument of a process (its descriptor goes with the start message) or inside a queue or pipe
// message; a fork child inherits it. A block that comes back to a process that still maps it
// (a buffer pool cycling through queues) reuses that mapping: no new mmap, no page faults, so
// big buffers can travel with no copy and no per-message cost.
//
// Thread safety: the handle is a value; what you do in the memory is yours to synchronize
// (see mproc/lock.hpp). Destructor: unmaps this process's view when the last copy goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mproc/detail/transfer.hpp"
#include "mproc/error.hpp"
#include "mproc/serialization.hpp"

namespace mproc {

namespace detail {
/// One mapping of a memfd in this process.
struct shm_mapping {
  int fd = -1;
  void* addr = nullptr;
  std::size_t size = 0;
  /// Runs (in this process) before the mapping goes: a semaphore settles what this process holds.
  void (*before_unmap)(void* addr) = nullptr;
  ~shm_mapping();
};
}  // namespace detail

class shared_memory {
 public:
  /// An empty handle.
  shared_memory() = default;
  /// A new zero-filled block of `size` bytes (rounded up to whole pages by the kernel).
  static shared_memory create(std::size_t size);

  bool valid() const noexcept { return map_ != nullptr; }
  void* data() const noexcept { return map_ ? map_->addr : nullptr; }
  std::size_t size() const noexcept { return map_ ? map_->size : 0; }

  /// Internal: the memfd, for passing it on.
  int native_handle() const noexcept { return map_ ? map_->fd : -1; }
  /// Internal: maps a received memfd (takes ownership). errc::bad_message when it is smaller
  /// than `size` claims.
  static shared_memory adopt(int fd, std::size_t size);
  /// Internal: `fn(data())` runs when this process's last handle to the block goes (not when
  /// the process is killed, nor at _exit).
  void before_unmap(void (*fn)(void* addr)) const noexcept {
    if (map_) map_->before_unmap = fn;
  }
  /// Internal: watches the mapping without keeping it.
  std::weak_ptr<detail::shm_mapping> observe() const noexcept { return map_; }

 private:
  std::shared_ptr<detail::shm_mapping> map_;
};

template <>
struct codec<shared_memory> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const shared_memory& m);
  static void decode(reader& r, shared_memory& m);
};

}  // namespace mproc
