// mproc/array.hpp — a fixed-size array in shared memory with an optional lock
// (multiprocessing.Array, and RawArray without the lock).
//
//   void square(mproc::array<double> a) {
//     a.with_lock([](std::span<double> xs) { for (auto& x : xs) x *= x; });
//   }
//   auto a = mproc::array<double>::create({1.0, 2.0, 3.0});
//   node.spawn(square, a).join();        // a.to_vector() == {1, 4, 9}
//
// T must be trivially copyable (it lives as bytes in shared memory). get(i)/set(i, v) each take
// the lock; a read-modify-write needs with_lock, as `with a.get_lock():` in Python. An index out
// of range is errc::invalid_argument (Python's IndexError). With locking::without_lock there is
// no lock (RawArray): get/set/span are plain memory accesses, and get_lock/with_lock are
// errc::invalid_argument. The memory is anonymous (a memfd), freed by the kernel with the last
// holder; an array travels to a child as an argument of a process.
//
// Thread safety: any number of threads and processes, through the lock (without it, yours to
// synchronize). Destructor: releases this handle only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/block_codec.hpp"
#include "mproc/lock.hpp"
#include "mproc/shared_memory.hpp"

namespace mproc {

/// Whether a shared value or array comes with a lock (Python's `lock=True/False`).
enum class locking { with_lock, without_lock };

template <class T>
class array {
  static_assert(std::is_trivially_copyable_v<T>, "mproc::array<T>: T must be trivially copyable");

 public:
  /// An empty handle.
  array() = default;
  /// `n` elements, each `initial` (n == 0: errc::invalid_argument).
  static array create(std::size_t n, const T& initial = T{}, locking l = locking::with_lock) {
    array a = allocate(n, l);
    for (std::size_t i = 0; i < n; ++i) std::memcpy(a.element(i), &initial, sizeof(T));
    return a;
  }
  /// A copy of `values`.
  static array create(std::span<const T> values, locking l = locking::with_lock) {
    array a = allocate(values.size(), l);
    std::memcpy(a.element(0), values.data(), values.size_bytes());
    return a;
  }
  static array create(std::initializer_list<T> values, locking l = locking::with_lock) {
    return create(std::span<const T>{values.begin(), values.size()}, l);
  }
  /// Internal: the array in a received block.
  static array attach(shared_memory memory) {
    if (memory.size() < data_offset()) throw error(errc::bad_message, "mproc::array: block too small");
    array a;
    a.lock_ = lock::attach(memory, 0);
    a.memory_ = std::move(memory);
    if (a.memory_.size() < data_offset() + a.size() * sizeof(T)) throw error(errc::bad_message, "mproc::array: block too small");
    return a;
  }

  bool valid() const noexcept { return memory_.valid(); }
  std::size_t size() const noexcept { return valid() ? static_cast<std::size_t>(header().size) : 0; }
  bool has_lock() const noexcept { return valid() && header().locked != 0; }

  /// Element i, read under the lock.
  T get(std::size_t i) {
    auto held = hold_if_locked(i);
    T out;
    std::memcpy(&out, element(i), sizeof(T));
    return out;
  }
  /// Writes element i under the lock.
  void set(std::size_t i, const T& v) {
    auto held = hold_if_locked(i);
    std::memcpy(element(i), &v, sizeof(T));
  }
  /// Every element, copied under the lock (Python's a[:]).
  std::vector<T> to_vector() {
    auto held = hold_if_locked(0);
    std::vector<T> out(size());
    std::memcpy(out.data(), element(0), size() * sizeof(T));
    return out;
  }
  /// Runs f(std::span<T>) under the lock and returns what it returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    auto held = get_lock().hold();
    return std::forward<F>(f)(span());
  }
  /// The lock (Python's get_lock()); errc::invalid_argument without one.
  mproc::lock& get_lock() {
    if (!has_lock()) throw error(errc::invalid_argument, "mproc::array: created without a lock");
    return lock_;
  }
  /// The elements, without the lock (Python's get_obj()).
  std::span<T> span() const noexcept { return {std::launder(static_cast<T*>(element(0))), size()}; }

  const shared_memory& memory() const noexcept { return memory_; }

 private:
  struct header_t {
    std::uint64_t size;
    std::uint32_t locked;
  };
  static constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
  static std::size_t header_offset() noexcept { return lock::footprint(); }
  static std::size_t data_offset() noexcept {
    return align_up(header_offset() + sizeof(header_t), alignof(T) > 64 ? alignof(T) : 64);
  }

  static array allocate(std::size_t n, locking l) {
    if (n == 0) throw error(errc::invalid_argument, "mproc::array: no elements");
    array a;
    a.memory_ = shared_memory::create(data_offset() + n * sizeof(T));
    a.lock_ = lock::create_in(a.memory_, 0);
    new (static_cast<char*>(a.memory_.data()) + header_offset())
        header_t{n, l == locking::with_lock ? 1u : 0u};
    return a;
  }
  const header_t& header() const noexcept {
    return *std::launder(reinterpret_cast<const header_t*>(static_cast<const char*>(memory_.data()) + header_offset()));
  }
  void* element(std::size_t i) const noexcept { return static_cast<char*>(memory_.data()) + data_offset() + i * sizeof(T); }
  std::optional<lock_guard> hold_if_locked(std::size_t i) {
    if (i >= size()) throw error(errc::invalid_argument, "mproc::array: index out of range");
    if (!has_lock()) return std::nullopt;
    return lock_.hold();
  }

  shared_memory memory_;
  mproc::lock lock_;
};

/// An array travels as an argument of a process, with its shared memory.
template <class T>
struct codec<array<T>> : detail::block_codec<array<T>> {};

}  // namespace mproc
