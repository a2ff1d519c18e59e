// mproc/detail/deadline.hpp — deadlines on the monotonic clock, as every blocking call of
// mproc takes them.
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>

namespace mproc::detail {

using deadline = std::chrono::steady_clock::time_point;

/// No deadline.
constexpr deadline forever = deadline::max();

/// now + d, saturating at `forever` (duration::max() means "no timeout").
inline deadline deadline_after(std::chrono::steady_clock::duration d) {
  auto now = std::chrono::steady_clock::now();
  return d >= forever - now ? forever : now + d;
}

/// poll(2)'s timeout argument for a deadline: -1 for `forever`, else the milliseconds left,
/// rounded up (so a wake-up is never early), 0 once passed.
inline int poll_timeout_ms(deadline until) {
  if (until == forever) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

}  // namespace mproc::detail
