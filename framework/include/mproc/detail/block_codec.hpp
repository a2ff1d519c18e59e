// mproc/detail/block_codec.hpp — the codec of every handle that is one block of shared memory
// (value, array, rlock, semaphore, event, condition, barrier): it travels as that block, and
// the receiving process attaches to it with T::attach(memory).
#pragma once

#include <utility>

#include "mproc/serialization.hpp"
#include "mproc/shared_memory.hpp"

namespace mproc::detail {

template <class T>
struct block_codec {
  static constexpr bool enabled = true;
  static void encode(writer& w, const T& x) { mproc::encode(w, x.memory()); }
  static void decode(reader& r, T& x) {
    shared_memory m;
    mproc::decode(r, m);
    x = T::attach(std::move(m));
  }
};

}  // namespace mproc::detail
