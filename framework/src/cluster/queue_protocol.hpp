// Internal: how a process on one host uses a queue that lives on another (mproc::cluster).
//
//   process on B ──mproc actors──▶ relay (B's node process) ──CAF remoting──▶ gateway (on A)
//                                                                             └▶ the queue's core
//
// Every call names the gateway's capability: a random id that only the handles exported to a
// node learn (the gateway refuses calls without it), so knowing a gateway's actor id is not
// enough to use it. A call is one queue_call, mproc-encoded in a std::string; the answer is a
// std::string (an encoded value, a count, or nothing) or a caf::error whose code is the errc the
// queue reported.
//
// Thread safety: types and free functions without shared state.
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/queue_core.hpp"
#include "mproc/serialization.hpp"

namespace mproc::cluster::detail {

/// A call to a gateway: (queue_call_atom, capability, encoded queue_call) -> std::string.
using queue_call_atom = caf::atom_constant<caf::atom("mp_qcall")>;
/// To the relay: the same call, to be forwarded to the gateway the capability names.
using relay_call_atom = caf::atom_constant<caf::atom("mp_rcall")>;
/// To the relay: (capability, presence actor): a process of this node holds a handle that can
/// put for as long as that actor lives (it ends with the handle, or with its process).
using relay_writer_atom = caf::atom_constant<caf::atom("mp_rwriter")>;

enum class queue_op : std::uint8_t {
  put = 1,
  get,
  qsize,
  close,
  task_done,
  join,
  writer_here,
  writer_gone,
  issue_ticket,
  redeem_ticket,
  release_ticket,
};

struct queue_call {
  queue_op op = queue_op::qsize;
  /// Time left until the caller's deadline when it called, in ns; -1 without a deadline.
  std::int64_t timeout_ns = 0;
  /// put: the value's encoding.
  std::string value;
  /// redeem_ticket, release_ticket.
  std::uint64_t ticket = 0;
};
template <class F>
void inspect(F& f, queue_call& x) {
  auto op = static_cast<std::uint8_t>(x.op);
  f(op, x.timeout_ns, x.value, x.ticket);
  x.op = static_cast<queue_op>(op);
}

inline queue_call make_call(queue_op op, std::int64_t timeout_ns = 0) {
  queue_call call;
  call.op = op;
  call.timeout_ns = timeout_ns;
  return call;
}

/// The relative timeout a call carries for `until`.
std::int64_t timeout_for(mproc::detail::deadline until);
/// The deadline on the serving side.
mproc::detail::deadline deadline_for(std::int64_t timeout_ns);

/// An error a queue call reported, for the caller (its errc survives the trip).
caf::error to_caf_error(const std::error_code& ec);

/// What a remote queue token's path says: "mproc-cluster:<maxsize>:<capability>:<relay socket>".
struct remote_token_info {
  std::size_t maxsize = 0;
  std::string capability;
  /// The serving node's relay_socket_path (relay.hpp).
  std::string relay_socket;
};
std::string remote_token_path(const remote_token_info& info);
/// Parses a remote token's path; false when it is not one.
bool parse_remote_token_path(const std::string& path, remote_token_info& info);

}  // namespace mproc::cluster::detail
