#include "fork_gate.hpp"
#include "hold_across_fork.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <mutex>
#include <new>
#include <vector>

namespace mproc::detail {
namespace {

using namespace std::chrono_literals;

// Both mutexes are held by the forking thread across the fork, so in the child they are held by
// its one thread, which unlocks them: no other thread can hold one at that moment, and the
// child's lock state is the parent's (overwriting a held mutex instead hid the lock from TSan,
// whose record of a mutex does not see the bytes change, and then reported a double lock).
struct registry {
  std::mutex members_mutex;
  std::vector<fork_gate_registration*> members;
  std::mutex state_mutex;  // what parked handlers touch (never members_mutex)
  std::condition_variable changed;
  // Rounds, not a flag: a thread parked for one fork may not have woken up yet when the next
  // fork begins, and a reset flag would keep it parked through that one too (a 1 s stall).
  std::uint64_t round = 0;     // the fork being prepared
  std::uint64_t released = 0;  // the last round whose fork returned in the parent
  int parked = 0;              // threads parked for `round`
  std::size_t held_taken = 0;  // mutexes of hold_across_fork taken for the fork under way
};
// One per process; after fork() the child resets it in place (its members are the parent's
// threads).
registry* current = new registry;  // NOLINT: intentionally leaked

// The mutexes of hold_across_fork. Constant-initialized, so static initializers of other files
// may add theirs before this file's own have run. Slots fill front to back and never empty, so
// the filled ones are a prefix: a fork takes the prefix it sees (one added meanwhile waits for
// the next fork) and releases exactly that.
constinit std::array<std::atomic<std::mutex*>, 8> held{};

/// Locks the held mutexes in order; returns how many.
std::size_t take_held_mutexes() {
  std::size_t n = 0;
  for (; n < held.size(); ++n) {
    std::mutex* m = held[n].load(std::memory_order_acquire);
    if (m == nullptr) break;
    m->lock();
  }
  return n;
}

/// Unlocks the first `n` held mutexes, in the reverse order.
void release_held_mutexes(std::size_t n) {
  while (n > 0) held[--n].load(std::memory_order_relaxed)->unlock();
}

}  // namespace

// Reached through these friends of nothing: the registry only needs io_ and thread_.
struct fork_gate_access {
  static boost::asio::io_context& io(fork_gate_registration& r);
  static std::thread::id thread(fork_gate_registration& r);
};

namespace {

void before_fork() {
  registry* g = current;
  g->members_mutex.lock();  // released by after_fork_in_parent or after_fork_in_child
  std::uint64_t round;
  {
    std::lock_guard lock{g->state_mutex};
    round = ++g->round;
    g->parked = 0;
  }
  int posted = 0;
  for (auto* m : g->members) {
    auto& io = fork_gate_access::io(*m);
    if (fork_gate_access::thread(*m) == std::this_thread::get_id() || io.stopped()) continue;
    boost::asio::post(io, [g, round] {
      std::unique_lock lock{g->state_mutex};
      if (g->round == round) ++g->parked;
      g->changed.notify_all();
      // Bounded: a fork that never returns to the parent must not freeze us for good.
      g->changed.wait_for(lock, 5s, [g, round] { return g->released >= round; });
    });
    ++posted;
  }
  // Bounded too: a thread busy in a long handler is forked without being parked, as before.
  std::unique_lock lock{g->state_mutex};
  g->changed.wait_for(lock, 1s, [&] { return g->parked >= posted; });
  lock.release();  // kept across the fork; parked threads that wake up wait for it
  // Last: a parked thread holds none of them, and none of their holders waits for the gate's
  // locks or for another thread (hold_across_fork's rule), so each is free again soon.
  g->held_taken = take_held_mutexes();
}

void after_fork_in_parent() {
  registry* g = current;
  release_held_mutexes(g->held_taken);
  g->released = g->round;
  g->state_mutex.unlock();
  g->changed.notify_all();
  g->members_mutex.unlock();
}

void after_fork_in_child() {
  registry* g = current;
  // Renewed, unlike the mutexes: it counts the parent's parked threads as waiters, which are
  // not here and never leave it, and a notify (or its destructor) would wait for them.
  new (&g->changed) std::condition_variable;
  g->members.clear();  // registrations of the parent's threads: destroying them here is a no-op
  g->parked = 0;
  g->round = g->released = 0;
  release_held_mutexes(g->held_taken);
  g->state_mutex.unlock();
  g->members_mutex.unlock();
}

[[maybe_unused]] const int atfork_registered =
    ::pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);

}  // namespace

void hold_across_fork(std::mutex& m) noexcept {
  for (auto& slot : held) {
    std::mutex* empty = nullptr;
    if (slot.compare_exchange_strong(empty, &m, std::memory_order_release)) return;
  }
  std::fputs("mproc: hold_across_fork: more mutexes than it has room for\n", stderr);
  std::abort();
}

boost::asio::io_context& fork_gate_access::io(fork_gate_registration& r) { return r.io_; }
std::thread::id fork_gate_access::thread(fork_gate_registration& r) { return r.thread_; }

fork_gate_registration::fork_gate_registration(boost::asio::io_context& io, std::thread::id thread)
    : io_(io), thread_(thread) {
  registry* g = current;
  std::lock_guard lock{g->members_mutex};
  g->members.push_back(this);
}

fork_gate_registration::~fork_gate_registration() {
  registry* g = current;
  std::lock_guard lock{g->members_mutex};
  std::erase(g->members, this);
}

}  // namespace mproc::detail
