// mproc/detail/deadline.hpp — deadlines on the monotonic clock, as every blocking call of
// mproc takes them.
#pragma once

#include <chrono>

namespace mproc::detail {

using deadline = std::chrono::steady_clock::time_point;

/// No deadline.
constexpr deadline forever = deadline::max();

/// now + d, saturating at `forever` (duration::max() means "no timeout").
inline deadline deadline_after(std::chrono::steady_clock::duration d) {
  auto now = std::chrono::steady_clock::now();
  return d >= forever - now ? forever : now + d;
}

}  // namespace mproc::detail
