// Internal: the mutex of a process-wide object, held by the forking thread across every fork().
//
// A fork child gets a copy of every mutex, but of no thread except the one that forked: a mutex
// another thread held at that moment stays locked in the child for good. Overwriting it in the
// child (placement new) is undefined behaviour and hides the lock from TSan. The standard
// discipline instead: the prepare handler takes the mutex, so no other thread holds it at the
// fork, and the parent and child handlers unlock it; the child's one thread then owns it, as it
// legitimately took it. The fork gate (fork_gate.cpp) runs these steps, after it has parked the
// I/O threads, so a parked thread holds none of these mutexes.
#pragma once

#include <functional>
#include <mutex>

namespace mproc::detail {

/// From now on the forking thread holds `m` across every fork() of the process: locked before
/// the fork, unlocked after it in the parent and in the child (the mutexes in the reverse order
/// of their registration). For the mutex of a leaked singleton that several threads take
/// briefly and that a fork child must be able to take again.
///
/// The rule that keeps a fork from deadlocking: while holding `m`, a thread does only local,
/// bounded work (allocate, look up, map memory). It never forks, never takes another mutex given
/// here, never registers or unregisters a fork_gate_registration (the gate holds its own lock
/// while it takes `m`) and never waits for another thread (which may be parked for the fork).
///
/// Call once per mutex, best from a static initializer (it works before the fork gate's own
/// have run). A process holds at most 8 mutexes this way; one more is a bug in mproc, and the
/// call aborts with a message. `m` must live as long as the process.
/// Thread safety: any thread, also while another one forks.
void hold_across_fork(std::mutex& m) noexcept;

/// Makes a T that is never destroyed (it may be used during exit) and gives its mutex, the
/// member `mutex_of` (a std::mutex, or a function returning one), to hold_across_fork. For the
/// initializer of a namespace-scope pointer: made during static initialization, not at first use,
/// because a fork while another thread ran a function-local static's initializer would leave the
/// child waiting for it for good.
template <class T, class Member>
T* new_held_across_fork(Member T::*mutex_of) {
  auto* made = new T;  // NOLINT: intentionally leaked
  hold_across_fork(std::invoke(mutex_of, *made));
  return made;
}

}  // namespace mproc::detail
