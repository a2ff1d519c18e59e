// CPU-bound work across cores: count the primes below a bound with a pool of 1 worker, then
// with one worker per CPU, and print the speedup (the figure pool.cpu_speedup measures it too).
#include <mproc/mproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <thread>
#include <tuple>
#include <vector>

#include "primes.hpp"

MPROC_ENTRY(count_primes);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  constexpr std::int64_t bound = 2'000'000, pieces = 64;
  std::vector<std::tuple<std::int64_t, std::int64_t>> ranges;
  for (std::int64_t i = 0; i < pieces; ++i) ranges.emplace_back(bound * i / pieces, bound * (i + 1) / pieces);

  auto timed = [&](std::size_t workers) {
    mproc::pool pool{node, workers};
    auto t0 = std::chrono::steady_clock::now();
    auto counts = pool.starmap(count_primes, ranges);
    std::chrono::duration<double> s = std::chrono::steady_clock::now() - t0;
    return std::pair{std::accumulate(counts.begin(), counts.end(), std::int64_t{0}), s.count()};
  };
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  auto [one, t1] = timed(1);
  auto [all, tn] = timed(cores);
  std::printf("primes below %lld: %lld\n", static_cast<long long>(bound), static_cast<long long>(one));
  std::printf("1 worker: %.2f s\n%zu workers: %.2f s (speedup %.2fx)\n", t1, cores, tn, t1 / tn);
  return one == all ? 0 : 1;
}
