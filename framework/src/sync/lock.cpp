#include "mproc/lock.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace mproc {
namespace {

constexpr std::size_t alignment = 64;

std::error_code from_errno(int rc) { return {rc, std::system_category()}; }

timespec monotonic_deadline(std::chrono::steady_clock::duration timeout) {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  auto total = static_cast<long long>(now.tv_nsec) + ns % 1000000000LL;
  timespec t{};
  t.tv_sec = now.tv_sec + static_cast<time_t>(ns / 1000000000LL + total / 1000000000LL);
  t.tv_nsec = static_cast<long>(total % 1000000000LL);
  return t;
}

/// pthread_mutex_clocklock on the monotonic clock. g++ 12's TSan runtime intercepts lock,
/// trylock and timedlock but not clocklock, so a lock taken here would be unknown to it: its
/// release reported as "unlock of an unlocked mutex", what it guards as racy. Under TSan the
/// call is announced as the try-lock it is.
int lock_until(pthread_mutex_t* m, const timespec& until) {
#if defined(__SANITIZE_THREAD__)
  __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
  int rc = ::pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &until);
  bool got = rc == 0 || rc == EOWNERDEAD;
  __tsan_mutex_post_lock(m, __tsan_mutex_try_lock | (got ? 0 : __tsan_mutex_try_lock_failed), 0);
  return rc;
#else
  return ::pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &until);
#endif
}

/// A robust mutex's word is its owner's thread id (plus flag bits): the kernel reads it the same
/// way when the owner dies (and then clears the id). Only this thread can make it its own id or
/// change it from that, so a relaxed read answers "held by this thread" exactly.
bool held_by_caller(const void* mutex) noexcept {
  auto word = __atomic_load_n(&static_cast<const pthread_mutex_t*>(mutex)->__data.__lock, __ATOMIC_RELAXED);
  return (static_cast<unsigned>(word) & FUTEX_TID_MASK) == static_cast<unsigned>(::gettid());
}

}  // namespace

std::size_t lock::footprint() noexcept { return (sizeof(pthread_mutex_t) + alignment - 1) / alignment * alignment; }

void* lock::mutex() const noexcept { return static_cast<char*>(memory_.data()) + offset_; }

lock lock::attach(shared_memory memory, std::size_t offset) {
  if (!memory.valid() || offset % alignment != 0 || offset + footprint() > memory.size())
    throw error(errc::bad_message, "mproc::lock: no lock at that place");
  lock l;
  l.memory_ = std::move(memory);
  l.offset_ = offset;
  return l;
}

lock lock::create_in(shared_memory memory, std::size_t offset, detail::mutex_kind kind) {
  lock l = attach(std::move(memory), offset);
  pthread_mutexattr_t attr;
  ::pthread_mutexattr_init(&attr);
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ::pthread_mutexattr_settype(&attr, kind == detail::mutex_kind::recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK);
  int rc = ::pthread_mutex_init(static_cast<pthread_mutex_t*>(l.mutex()), &attr);
  ::pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw error(from_errno(rc), "mproc::lock: pthread_mutex_init");
  return l;
}

lock lock::create() { return create_in(shared_memory::create(footprint()), 0); }

std::optional<acquired> lock::acquire(duration timeout, std::error_code& ec) {
  if (!valid()) return ec = make_error_code(errc::invalid_argument), std::nullopt;
  return acquire_at(mutex(), timeout, ec);
}

std::optional<acquired> lock::acquire_at(void* mutex, duration timeout, std::error_code& ec) {
  auto* m = static_cast<pthread_mutex_t*>(mutex);
  int rc;
  if (timeout == duration::max()) {
    rc = ::pthread_mutex_lock(m);
  } else if (timeout <= duration::zero()) {
    rc = ::pthread_mutex_trylock(m);
    if (rc == EBUSY) rc = ETIMEDOUT;
  } else {
    rc = lock_until(m, monotonic_deadline(timeout));
  }
  ec.clear();
  switch (rc) {
    case 0: return acquired::normally;
    case EOWNERDEAD:
      // Its holder died holding it: it is ours now; mark it usable again and say so.
      ::pthread_mutex_consistent(m);
      return acquired::after_owner_died;
    case ETIMEDOUT: return std::nullopt;
    case EDEADLK:
      ec = make_error_code(errc::invalid_argument);  // already held by this thread
      return std::nullopt;
    default:
      ec = from_errno(rc);
      return std::nullopt;
  }
}

bool lock::held_by_this_thread() const noexcept { return valid() && held_by_caller(mutex()); }

void lock::release(std::error_code& ec) {
  if (!valid()) return void(ec = make_error_code(errc::invalid_argument));
  release_at(mutex(), ec);
}

void lock::release_at(void* mutex, std::error_code& ec) {
  // Asked before unlocking, not left to the mutex's EPERM: an unlock by a thread that does not
  // hold it is defined for an error-checking mutex, but TSan reports it as a bug all the same.
  if (!held_by_caller(mutex)) return void(ec = make_error_code(errc::invalid_argument));
  int rc = ::pthread_mutex_unlock(static_cast<pthread_mutex_t*>(mutex));
  if (rc == 0) ec.clear();
  else ec = from_errno(rc);
}

}  // namespace mproc
