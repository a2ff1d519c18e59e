// Who holds what, per process, inside a sync primitive's shared state: a semaphore's units, a
// barrier's waiting parties. Lives in shared memory, touched only under the primitive's lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "process_identity.hpp"

namespace mproc::detail {

struct holder_table {
  static constexpr std::size_t capacity = 64;

  struct entry {
    process_identity who;
    std::int64_t units;  // 0: free entry
  };
  entry entries[capacity];

  /// One more unit for `p`. True when that is its first (a new entry); false when it held some
  /// already, or when the table is full (the unit then goes unrecorded).
  bool add(const process_identity& p) {
    entry* free = nullptr;
    for (auto& e : entries) {
      if (e.units > 0 && e.who == p) return ++e.units, false;
      if (e.units == 0 && free == nullptr) free = &e;
    }
    if (free == nullptr) return false;
    *free = {p, 1};
    return true;
  }
  /// One unit less for `p`, if it holds any.
  void remove(const process_identity& p) {
    for (auto& e : entries)
      if (e.units > 0 && e.who == p) return void(--e.units);
  }
  /// Forgets everything `p` holds (it ended normally and keeps what it took).
  void forget(const process_identity& p) {
    for (auto& e : entries)
      if (e.units > 0 && e.who == p) e.units = 0;
  }
  /// Forgets the entries of processes that are gone and returns the units they held.
  std::int64_t drop_dead() {
    std::int64_t units = 0;
    for (auto& e : entries)
      if (e.units > 0 && !still_running(e.who)) units += e.units, e.units = 0;
    return units;
  }
};

}  // namespace mproc::detail
