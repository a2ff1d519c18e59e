// Pool figures of mproc_bench, beside Python's multiprocessing.Pool and
// concurrent.futures.ProcessPoolExecutor measured in the same run, round by round:
//
//   pool.apply_async.throughput  tasks/s: a pool of 2 workers, n apply_async calls of a trivial
//                                task, then every result taken; baseline python.pool.apply_async
//                                (python.executor.submit is printed beside it)
//   pool.map_chunk1.throughput   tasks/s of map(trivial, range(n), chunksize=1), pool of 2;
//                                baseline python.pool.map_chunk1
//   pool.map_auto.throughput     the same with the default chunksize; baseline python.pool.map_auto
//   pool.cpu_speedup             a CPU-bound map (trial-division prime counting in 32 pieces):
//                                time with 1 worker / time with 2 workers (ideal 2 on 2 free cores)
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

std::vector<figure> pool_figures(mproc::node& node, bool quick, const std::optional<std::filesystem::path>& python_dir);

}  // namespace bench
