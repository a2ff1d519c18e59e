// Queue figures of mproc_bench (issue "typed mailboxes"), each beside its baselines measured
// in the same run, round by round:
//
//   queue.int64.throughput     msg/s, 1 producer process -> 1 consumer process (the queue owned
//                              by the bench's node in between); baseline python.mp_queue.int,
//                              raw_ratio against raw.af_unix.write_per_msg
//   queue.struct.throughput    the same with {int64, 16-char string, 8 doubles};
//                              baseline python.mp_queue.struct
//   queue.mpmc4x4.throughput   4 producer and 4 consumer processes; every value is checked to
//                              arrive exactly once (a bitmap per consumer); baseline
//                              python.mp_queue.mpmc4x4
//   queue.bulk64mib.throughput GB/s of 64 MiB std::vector<std::byte> messages by value,
//                              producer process -> consumer process, taken with get_into (into
//                              the consumer's one vector), every 4 KiB page of every message
//                              checked; after 3 warm-up messages (the producer's pool of
//                              bodies); baseline raw.af_unix.bulk (1 MiB writes, socketpair)
//   queue.bulk64mib.fresh.throughput  the same, taken with get() (a new vector each time)
//   raw.af_unix.write_per_msg  msg/s, one 8-byte write() per message, reader reads 64 KiB
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include <mproc/node.hpp>

#include "bench_support.hpp"

namespace bench {

/// Runs `rounds` rounds of every queue figure and its baselines. `python_dir` is a scratch
/// directory for the Python scripts, or nullopt to skip Python.
std::vector<figure> queue_figures(mproc::node& node, bool quick, const std::optional<std::filesystem::path>& python_dir);

}  // namespace bench
