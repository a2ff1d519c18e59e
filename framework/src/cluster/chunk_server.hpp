// Internal: the serving side of a pool whose workers live on other nodes (mproc::cluster::make_pool).
// A node runs the chunks other nodes send it in one pool of its own worker processes, started on
// the first chunk (with the worker count that chunk asks for, as pool_options::workers: 0 is one
// per CPU; make_pool always asks for at least one) and ended with the node.
//
// Thread safety: run_chunk from any thread; `done` is called once, from the pool's manager thread.
#pragma once

#include <caf/atom.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace mproc::cluster::detail {

using run_chunk_atom = caf::atom_constant<caf::atom("mp_chunk")>;
using chunk_done_atom = caf::atom_constant<caf::atom("mp_chdone")>;
using chunk_failed_atom = caf::atom_constant<caf::atom("mp_chfail")>;

/// Runs one encoded pool_task here. `done(true, bytes)` gets the encoded pool_result;
/// `done(false, why)` says why the chunk has no result (its worker died past the retries, the
/// pool could not start, the task did not decode).
void run_chunk(const std::string& task_bytes, std::uint32_t workers,
               std::function<void(bool ok, std::string bytes_or_why)> done);

}  // namespace mproc::cluster::detail
