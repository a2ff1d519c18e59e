#include "body_pool.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include "../hold_across_fork.hpp"
#include "mproc/detail/record_encoding.hpp"
#include "mproc/error.hpp"

namespace mproc::detail::body_pool {
namespace {

constexpr int size_seals = F_SEAL_SHRINK | F_SEAL_GROW;
/// Bodies grow in these steps, so one serves messages of about the same size.
constexpr std::size_t granule = std::size_t{2} << 20;
/// A consumer keeps at most this many recent mappings (of all producers together).
constexpr std::size_t max_cached = 2 * max_bodies;

/// A reader that caught up with the producer spins this long for the next chunk (one takes
/// ~30 us to write here), then sleeps at most `sleep_limit` at a time, checking in between
/// whether the producer still lives.
constexpr auto spin_limit = std::chrono::microseconds(100);
constexpr auto sleep_limit = std::chrono::milliseconds(5);
/// A sleeping reader asks to be woken once this much more is written.
constexpr std::size_t sleep_batch = std::size_t{8} << 20;
/// How much of a body the producer writes before the consumer may be reading it.
constexpr std::size_t yield_until = std::size_t{2} << 20;

std::uint32_t* futex_word(std::atomic<std::uint32_t>* word) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return reinterpret_cast<std::uint32_t*>(word);
}

/// Sleeps until `word` is woken while it is still `seen`, at most `limit`.
void wait_for_change(std::atomic<std::uint32_t>* word, std::uint32_t seen, std::chrono::nanoseconds limit) noexcept {
  auto ns = static_cast<std::uint64_t>(limit.count());
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  ::syscall(SYS_futex, futex_word(word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, futex_word(&word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

/// A spinning thread's hint to the CPU (and to a hyperthread sibling).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

void unmap(const void* p, std::size_t n) noexcept {
  if (p != nullptr && p != MAP_FAILED) ::munmap(const_cast<void*>(p), n);
}

}  // namespace

// ---- producer ------------------------------------------------------------------------------

struct body {
  unique_fd fd;
  std::byte* base = nullptr;  // a writable mapping of the whole memfd
  std::size_t capacity = 0;   // encoding bytes it holds at most
  std::uint64_t sent_as = 0;  // when it was last reserved, in the pool's order
  std::atomic<bool> filling{false};  // reserved and not yet filled: not idle, whatever its reader says
  body_header* header() const noexcept { return reinterpret_cast<body_header*>(base); }
  ~body() { unmap(base, header_size + capacity); }
};

namespace {

/// A new body of `capacity`, marked sent; null when the system gives none.
std::shared_ptr<body> make_body(std::size_t capacity) {
  auto b = std::make_shared<body>();
  b->fd = unique_fd{::memfd_create("mproc-body", MFD_CLOEXEC | MFD_ALLOW_SEALING)};
  if (!b->fd || ::ftruncate(b->fd.get(), static_cast<off_t>(header_size + capacity)) != 0 ||
      ::fcntl(b->fd.get(), F_ADD_SEALS, size_seals | F_SEAL_SEAL) != 0)
    return nullptr;
  void* p = ::mmap(nullptr, header_size + capacity, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd.get(), 0);
  if (p == MAP_FAILED) return nullptr;
  b->base = static_cast<std::byte*>(p);
  b->capacity = capacity;
  b->header()->magic = body_magic;
  b->header()->state.store(sent, std::memory_order_relaxed);
  return b;
}

/// Marks `b` reserved by this process for a new encoding: sent, nothing filled yet.
void mark_reserved(body& b) noexcept {
  b.filling.store(true, std::memory_order_relaxed);
  b.header()->producer = ::getpid();
  b.header()->filled.store(0, std::memory_order_relaxed);
  b.header()->sleepers.store(0, std::memory_order_relaxed);  // idle: nobody reads it (one killed asleep may have left a count)
  b.header()->wake_at.store(0, std::memory_order_relaxed);
  b.header()->state.store(sent, std::memory_order_release);
}

/// Lets the threads that carry the frame to the consumer (ours, the owner's, the consumer's)
/// run on this CPU while the consumer has not started reading: on a busy machine they would
/// otherwise wait in this CPU's run queue until the whole body is written (measured: ~3 ms of a
/// 64 MiB copy), and the two copies would not overlap. Only over the first chunks, so a put
/// nobody waits for costs a few syscalls at most.
void make_way_for_the_frame(const body_header& h, std::size_t done) noexcept {
  if (done <= yield_until && h.state.load(std::memory_order_relaxed) == sent) ::sched_yield();
}

/// Publishes `filled` and wakes readers asleep on it. seq_cst, as the readers' side: a reader
/// either sees the new count or is counted in `sleepers` before we look.
void publish(body_header& h, std::uint32_t filled) noexcept {
  h.filled.store(filled, std::memory_order_seq_cst);
  if (h.sleepers.load(std::memory_order_seq_cst) != 0 && filled >= h.wake_at.load(std::memory_order_relaxed))
    futex_wake_all(h.filled);
}

class producer_pool {
 public:
  std::mutex& mutex() noexcept { return mutex_; }  // for hold_across_fork

  lent_body reserve(std::size_t size, bool may_wait) {
    if (size > max_bytes) return {};
    auto b = reserve_body(size, may_wait);
    if (!b) return {};
    return lent_body{std::move(b), size};
  }

  /// Drops `b` from the pool for good (its encoding was given up): readers drop their mappings.
  void retire(const std::shared_ptr<body>& b) {
    std::lock_guard lock{mutex_};
    b->header()->state.store(retired, std::memory_order_release);
    std::erase(bodies_, b);
  }

 private:
  using clock = std::chrono::steady_clock;
  using body_ptr = std::shared_ptr<body>;

  /// A body of at least `size` bytes marked sent: an idle one, a new one, or the next one
  /// consumers give back; null when none.
  body_ptr reserve_body(std::size_t size, bool may_wait) {
    std::unique_lock lock{mutex_};
    forget_if_forked();
    if (auto b = take_idle(size)) return b;
    if (auto b = add(size)) return b;
    // Every body is in use, the oldest most likely to come back next. Waiting for it beats a
    // fresh memfd, whose pages cost about 1 ns a byte here, so wait that long at most; after
    // such a wait ran out (no consumer keeps up), wait no more until a body comes back. The
    // oldest one's release wakes us; another's (a body of another queue) is seen within 1 ms.
    if (!may_wait || !waiting_pays_) return nullptr;
    const auto until = clock::now() + std::chrono::nanoseconds(std::max<std::size_t>(size, 1000000));
    for (auto now = clock::now(); now < until; now = clock::now()) {
      if (auto b = take_idle(size)) return b;
      auto next = oldest_in_use(size);
      if (!next) break;
      std::uint32_t s = next->header()->state.load(std::memory_order_acquire);
      if (s == idle) continue;
      lock.unlock();
      wait_for_change(&next->header()->state, s, std::min<std::chrono::nanoseconds>(until - now, std::chrono::milliseconds(1)));
      lock.lock();
    }
    if (auto b = take_idle(size)) return b;
    waiting_pays_ = false;
    return nullptr;
  }

  body_ptr take_idle(std::size_t size) {
    body_ptr best;
    for (auto& b : bodies_)
      if (b->capacity >= size && (!best || b->capacity < best->capacity) && is_idle(*b)) best = b;
    if (!best) return nullptr;
    mark_reserved(*best);
    best->sent_as = ++sends_;
    waiting_pays_ = true;
    return best;
  }

  /// The body sent longest ago that can hold `size` bytes: the one consumers give back next.
  body_ptr oldest_in_use(std::size_t size) const {
    body_ptr oldest;
    for (auto& b : bodies_)
      if (b->capacity >= size && (!oldest || b->sent_as < oldest->sent_as)) oldest = b;
    return oldest;
  }

  /// A new body, when the pool has room for it or can make room by dropping idle ones.
  body_ptr add(std::size_t size) {
    const std::size_t capacity = (size + granule - 1) / granule * granule;
    if (capacity > max_bytes) return nullptr;
    for (;;) {
      std::size_t total = capacity;
      for (auto& b : bodies_) total += b->capacity;
      if (bodies_.size() < max_bodies && total <= max_bytes) break;
      auto idle_one = std::find_if(bodies_.begin(), bodies_.end(), [](const body_ptr& b) { return is_idle(*b); });
      if (idle_one == bodies_.end()) return nullptr;
      (*idle_one)->header()->state.store(retired, std::memory_order_release);  // consumers drop their mappings
      bodies_.erase(idle_one);
    }
    body_ptr b = make_body(capacity);
    if (!b) return nullptr;
    mark_reserved(*b);
    b->sent_as = ++sends_;
    bodies_.push_back(b);
    return b;
  }

  /// Its reader handed it back, and its producer is not filling it (a reader that failed may
  /// hand a body back before it is filled).
  static bool is_idle(const body& b) noexcept {
    return !b.filling.load(std::memory_order_acquire) && b.header()->state.load(std::memory_order_acquire) == idle;
  }

  /// A forked child shares its parent's bodies: it must neither fill nor retire them.
  void forget_if_forked() {
    pid_t now = ::getpid();
    if (now == pid_) return;
    pid_ = now;
    bodies_.clear();  // unmaps and closes; the state words stay as the parent set them
    waiting_pays_ = true;
  }

  std::mutex mutex_;
  pid_t pid_ = ::getpid();
  std::vector<body_ptr> bodies_;
  std::uint64_t sends_ = 0;
  bool waiting_pays_ = true;  // false from a wait that ran out until a body comes back
};

// Its mutex is held by the forking thread across every fork (new_held_across_fork,
// hold_across_fork.hpp): a child's first large put takes it. Taking it for a fork cannot
// deadlock: under it a producer only picks, makes (memfd, mmap) or drops bodies; it lets go of it
// before it waits for a body to come back.
producer_pool* const producer_pool_of_this_process = new_held_across_fork(&producer_pool::mutex);

producer_pool& the_producer_pool() { return *producer_pool_of_this_process; }

}  // namespace

lent_body& lent_body::operator=(lent_body&& other) noexcept {
  if (this != &other) {
    give_up();
    body_ = std::move(other.body_);
    size_ = other.size_;
  }
  return *this;
}

lent_body::~lent_body() { give_up(); }

unique_fd lent_body::descriptor() {
  unique_fd copy{::fcntl(body_->fd.get(), F_DUPFD_CLOEXEC, 0)};
  if (!copy) give_up();
  return copy;
}

void lent_body::fill(pieces encoding) noexcept {
  if (!body_) return;
  body_header& h = *body_->header();
  std::byte* to = body_->base + header_size;
  std::size_t done = 0;
  for (auto piece : encoding)
    for (std::size_t at = 0; at < piece.size();) {
      // Up to the next chunk boundary, so a reader gets each chunk as soon as it is whole.
      std::size_t n = std::min(piece.size() - at, fill_chunk - done % fill_chunk);
      std::memcpy(to + done, piece.data() + at, n);
      at += n;
      done += n;
      if (done % fill_chunk == 0) {
        publish(h, static_cast<std::uint32_t>(done));
        make_way_for_the_frame(h, done);
      }
    }
  publish(h, static_cast<std::uint32_t>(done));
  body_->filling.store(false, std::memory_order_release);
  body_.reset();
}

void lent_body::give_up() noexcept {
  if (!body_) return;
  publish(*body_->header(), fill_aborted);
  body_->filling.store(false, std::memory_order_release);
  try {
    the_producer_pool().retire(body_);
  } catch (...) {  // a mutex that cannot lock: the body just stays out of use
  }
  body_.reset();
}

lent_body reserve(std::size_t size, bool may_wait) { return the_producer_pool().reserve(size, may_wait); }

unique_fd lend(pieces encoding, std::size_t size, bool may_wait) {
  lent_body b = reserve(size, may_wait);
  if (!b) return {};
  unique_fd fd = b.descriptor();
  if (fd) b.fill(encoding);
  return fd;
}

// ---- consumer ------------------------------------------------------------------------------

class mapping {
 public:
  mapping(int fd, const struct stat& st) : dev_(st.st_dev), ino_(st.st_ino), size_(static_cast<std::size_t>(st.st_size)) {
    void* h = ::mmap(nullptr, header_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    void* d = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    header_ = h == MAP_FAILED ? nullptr : static_cast<body_header*>(h);
    data_ = d == MAP_FAILED ? nullptr : static_cast<const std::byte*>(d);
    if (header_ == nullptr || data_ == nullptr) {
      std::error_code why{errno, std::system_category()};
      release_maps();
      throw error(errc::bad_message, "cannot map the body of a large message: " + why.message());
    }
  }
  ~mapping() { release_maps(); }
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;

  bool same_file(const struct stat& st) const noexcept {
    return st.st_dev == dev_ && st.st_ino == ino_ && static_cast<std::size_t>(st.st_size) == size_;
  }
  std::size_t size() const noexcept { return size_; }
  body_header* header() const noexcept { return header_; }
  const std::byte* data() const noexcept { return data_; }

 private:
  void release_maps() noexcept {
    unmap(header_, header_size);
    unmap(data_, size_);
  }
  dev_t dev_;
  ino_t ino_;
  std::size_t size_;
  body_header* header_ = nullptr;
  const std::byte* data_ = nullptr;
};

namespace {

/// Recent mappings, newest first. A mapping holds its body's pages: bodies their producer
/// retired are dropped at the next lookup, the rest when more recent ones push them out.
class mapping_cache {
 public:
  std::mutex& mutex() noexcept { return mutex_; }  // for hold_across_fork

  std::shared_ptr<const mapping> get(int fd, const struct stat& st) {
    std::lock_guard lock{mutex_};
    std::erase_if(recent_, [](const std::shared_ptr<mapping>& m) {
      return m->header()->state.load(std::memory_order_acquire) == retired;
    });
    auto hit = std::find_if(recent_.begin(), recent_.end(), [&](const auto& m) { return m->same_file(st); });
    if (hit != recent_.end()) {
      std::rotate(recent_.begin(), hit, hit + 1);
    } else {
      recent_.insert(recent_.begin(), std::make_shared<mapping>(fd, st));
      std::size_t bytes = 0, keep = 0;
      while (keep < recent_.size() && keep < max_cached && bytes + recent_[keep]->size() <= 2 * max_bytes)
        bytes += recent_[keep++]->size();
      recent_.resize(std::max<std::size_t>(keep, 1));
    }
    return recent_.front();
  }

 private:
  std::mutex mutex_;
  std::vector<std::shared_ptr<mapping>> recent_;
};

// As the producer pool, its mutex is held across every fork (a child's first large get takes
// it). Under it a reader only maps and unmaps bodies.
mapping_cache* const mapping_cache_of_this_process = new_held_across_fork(&mapping_cache::mutex);

mapping_cache& the_mapping_cache() { return *mapping_cache_of_this_process; }

[[noreturn]] void not_a_body() {
  throw error(errc::bad_message, "the body of a large message is not a pooled memfd holding its length");
}

struct pending_releases {
  int depth = 0;
  std::vector<std::shared_ptr<const mapping>> bodies;
};
thread_local pending_releases deferred;

}  // namespace

std::shared_ptr<const mapping> borrow(int fd, std::uint64_t length) {
  struct stat st {};
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || seals < 0 || (seals & size_seals) != size_seals ||
      static_cast<std::uint64_t>(st.st_size) < header_size || length > static_cast<std::uint64_t>(st.st_size) - header_size)
    not_a_body();
  std::uint64_t magic = 0;  // read before mapping, so garbage never enters the cache
  if (::pread(fd, &magic, sizeof magic, 0) != sizeof magic || magic != body_magic) not_a_body();
  auto m = the_mapping_cache().get(fd, st);
  auto& state = m->header()->state;
  std::uint32_t s = state.load(std::memory_order_acquire);
  do {
    if (s != sent && s != reading) not_a_body();  // its producer may be writing it: never read that
  } while (!state.compare_exchange_weak(s, reading, std::memory_order_acquire));
  return m;
}

std::span<const std::byte> encoding(const mapping& m, std::uint64_t length) noexcept {
  return {m.data() + header_size, static_cast<std::size_t>(length)};
}

arriving_body::arriving_body(const mapping& m, std::uint64_t length, deadline until)
    : header_(m.header()), length_(static_cast<std::size_t>(length)), until_(until), outer_(arriving_now) {
  begin = m.data() + header_size;
  ready = std::min<std::size_t>(header_->filled.load(std::memory_order_acquire), length_);
  arriving_now = this;
}

arriving_body::~arriving_body() { arriving_now = outer_; }

std::size_t arriving_body::wait_ready(std::size_t need) {
  using clock = std::chrono::steady_clock;
  auto filled = [&] { return header_->filled.load(std::memory_order_acquire); };
  auto enough = [&](std::uint32_t f) { return f != fill_aborted && f >= need; };
  std::uint32_t f = filled();
  if (!enough(f) && spinning_pays_) {
    // The producer is most likely writing the next chunk on the other CPU right now: a sleep
    // and a wake-up would cost more than the chunk takes.
    const auto until = std::min(clock::now() + spin_limit, until_);  // a try that may not wait: no spin
    while (!enough(f = filled()) && f != fill_aborted && clock::now() < until) cpu_relax();
    spinning_pays_ = enough(f);
  }
  while (!enough(f)) {
    if (f == fill_aborted) throw error(errc::bad_message, "the producer of a large message gave it up before it was written");
    if (producer_gone() && !enough(f = filled()))
      throw error(errc::bad_message, "the producer of a large message died before it was written");
    // Checked after the producer's death: a dead producer is bad_message, not a timeout.
    const auto now = clock::now();
    if (now >= until_)
      throw body_still_arriving(errc::timeout, "the body of a large message was still being written at the deadline");
    header_->wake_at.store(static_cast<std::uint32_t>(std::min(length_, std::max(need, ready + sleep_batch))),
                           std::memory_order_relaxed);
    header_->sleepers.fetch_add(1, std::memory_order_seq_cst);
    if (!enough(f = header_->filled.load(std::memory_order_seq_cst)))
      wait_for_change(&header_->filled, f, std::min<clock::duration>(sleep_limit, until_ - now));
    header_->sleepers.fetch_sub(1, std::memory_order_seq_cst);
    f = filled();
  }
  return ready = std::min<std::size_t>(f, length_);
}

bool arriving_body::producer_gone() {
  if (!pidfd_) {
    std::error_code ec;
    pidfd_ = unique_fd{pidfd_open(header_->producer, ec)};
    if (!pidfd_) return ec == std::errc::no_such_process || ec == std::errc::invalid_argument;  // gone (or forged)
  }
  return pidfd_exited(pidfd_.get());  // a zombie counts: it writes no more
}

void release(const mapping& m) noexcept {
  // Only from reading: a body its producer gave up (retired) stays so, and is dropped.
  std::uint32_t expected = reading;
  m.header()->state.compare_exchange_strong(expected, idle, std::memory_order_release, std::memory_order_relaxed);
  futex_wake_all(m.header()->state);
}

deferred_release::deferred_release() noexcept : outermost_(deferred.depth++ == 0) {}

deferred_release::~deferred_release() {
  --deferred.depth;
  if (!outermost_) return;
  for (auto& m : deferred.bodies) release(*m);
  deferred.bodies.clear();
}

void release_when_done(std::shared_ptr<const mapping> m) {
  if (deferred.depth > 0) deferred.bodies.push_back(std::move(m));
  else release(*m);
}

}  // namespace mproc::detail::body_pool
