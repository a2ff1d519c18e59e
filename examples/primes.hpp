// Counting primes by trial division: deliberately CPU-bound work with no memory traffic, shared
// by the primes_speedup example and the pool.cpu_speedup benchmark.
#pragma once

#include <algorithm>
#include <cstdint>

/// Primes in [from, to).
inline std::int64_t count_primes(std::int64_t from, std::int64_t to) {
  std::int64_t n = 0;
  for (std::int64_t x = std::max<std::int64_t>(from, 2); x < to; ++x) {
    bool prime = true;
    for (std::int64_t d = 2; d * d <= x; ++d)
      if (x % d == 0) {
        prime = false;
        break;
      }
    n += prime;
  }
  return n;
}
