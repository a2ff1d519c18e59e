// mproc/value.hpp — a value in shared memory with its own lock (multiprocessing.Value).
//
//   void add(mproc::value<std::int64_t> counter, int n) {
//     for (int i = 0; i < n; ++i) counter.with_lock([](std::int64_t& v) { ++v; });
//   }
//   auto counter = mproc::value<std::int64_t>::create(0);
//   ... spawn add(counter, 1000) four times, join ...   // counter.get() == 4000, exactly
//
// T must be trivially copyable (it lives as bytes in shared memory). get() and set() each take
// the lock; a read-modify-write needs with_lock (as `with v.get_lock(): v.value += 1` in
// Python). The memory is anonymous (a memfd) and freed by the kernel with the last holder. A
// value travels to a child as an argument of a process.
//
// Thread safety: any number of threads and processes, through the lock. Destructor: releases
// this handle only.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "mproc/lock.hpp"
#include "mproc/serialization.hpp"
#include "mproc/shared_memory.hpp"

namespace mproc {

template <class T>
class value {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::value<T>: T must be trivially copyable");

 public:
  /// An empty handle.
  value() = default;
  /// A new value, initialised to `initial`, with its lock.
  static value create(const T& initial = T{}) {
    value v;
    v.memory_ = shared_memory::create(data_offset() + sizeof(T));
    v.lock_ = lock::create_in(v.memory_, 0);
    std::memcpy(v.raw(), &initial, sizeof(T));
    return v;
  }
  /// Internal: the value in a received block.
  static value attach(shared_memory memory) {
    if (memory.size() < data_offset() + sizeof(T)) throw error(errc::bad_message, "mproc::value: block too small");
    value v;
    v.lock_ = lock::attach(memory, 0);
    v.memory_ = std::move(memory);
    return v;
  }

  bool valid() const noexcept { return memory_.valid(); }

  /// The value, read under the lock.
  T get() {
    auto held = lock_.hold();
    T out;
    std::memcpy(&out, raw(), sizeof(T));
    return out;
  }
  /// Writes the value under the lock.
  void set(const T& v) {
    auto held = lock_.hold();
    std::memcpy(raw(), &v, sizeof(T));
  }
  /// Runs f(T&) under the lock and returns what it returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    auto held = lock_.hold();
    return std::forward<F>(f)(*std::launder(static_cast<T*>(raw())));
  }
  /// The lock (Python's get_lock()).
  mproc::lock& get_lock() noexcept { return lock_; }
  /// The raw object, without the lock (Python's get_obj()).
  T* get_obj() noexcept { return std::launder(static_cast<T*>(raw())); }

  const shared_memory& memory() const noexcept { return memory_; }

 private:
  static constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
  static std::size_t data_offset() noexcept { return align_up(lock::footprint(), alignof(T) > 64 ? alignof(T) : 64); }
  void* raw() const noexcept { return static_cast<char*>(memory_.data()) + data_offset(); }

  shared_memory memory_;
  mproc::lock lock_;
};

/// A value travels as an argument of a process, with its shared memory.
template <class T>
struct codec<value<T>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const value<T>& v) { mproc::encode(w, v.memory()); }
  static void decode(reader& r, value<T>& v) {
    shared_memory m;
    mproc::decode(r, m);
    v = value<T>::attach(std::move(m));
  }
};

}  // namespace mproc
