// Lock figures of mproc_bench, beside Python's multiprocessing.Lock in the same run:
//
//   lock.uncontended       ns per acquire/release pair, one process alone
//   lock.contended.2proc   ns per pair while two processes take turns on one lock (each pair
//                          also increments a shared counter, checked exact at the end)
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

std::vector<figure> lock_figures(mproc::node& node, bool quick, const std::optional<std::filesystem::path>& python_dir);

}  // namespace bench
