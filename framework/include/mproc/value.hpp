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
// Python). locking::without_lock makes a RawValue: no lock, get/set are plain accesses. It is an
// mproc::array of one element: the memory is anonymous (a memfd) and freed by the kernel with the
// last holder, and a value travels to a child as an argument of a process.
//
// Thread safety: any number of threads and processes, through the lock. Destructor: releases
// this handle only.
#pragma once

#include <span>
#include <type_traits>
#include <utility>

#include "mproc/array.hpp"
#include "mproc/detail/block_codec.hpp"

namespace mproc {

template <class T>
class value {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::value<T>: T must be trivially copyable");

 public:
  /// An empty handle.
  value() = default;
  /// A new value, initialised to `initial`, with its lock (or without: Python's RawValue).
  static value create(const T& initial = T{}, locking l = locking::with_lock) {
    return value{array<T>::create(1, initial, l)};
  }
  /// Internal: the value in a received block.
  static value attach(shared_memory memory) { return value{array<T>::attach(std::move(memory))}; }

  bool valid() const noexcept { return cell_.valid(); }

  /// The value, read under the lock.
  T get() { return cell_.get(0); }
  /// Writes the value under the lock.
  void set(const T& v) { cell_.set(0, v); }
  /// Runs f(T&) under the lock and returns what it returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    return cell_.with_lock([&](std::span<T> one) -> decltype(auto) { return std::forward<F>(f)(one[0]); });
  }
  /// The lock (Python's get_lock()); errc::invalid_argument for a value without one.
  mproc::lock& get_lock() { return cell_.get_lock(); }
  /// The raw object, without the lock (Python's get_obj()).
  T* get_obj() noexcept { return cell_.span().data(); }

  const shared_memory& memory() const noexcept { return cell_.memory(); }

 private:
  explicit value(array<T> cell) : cell_(std::move(cell)) {}
  array<T> cell_;  // a value is an array of one
};

/// A value travels as an argument of a process, with its shared memory.
template <class T>
struct codec<value<T>> : detail::block_codec<value<T>> {};

}  // namespace mproc
