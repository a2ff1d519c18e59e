// mproc/error.hpp — the one error model of mproc.
//
// Every failure is an `mproc::errc` value in the `mproc` error category. Calls come in two
// forms, as in Asio: a throwing one (throws `mproc::error`, a std::system_error) and one
// taking `std::error_code&` that never throws for mproc's own failures.
//
// Thread safety: everything here is immutable or value-typed; safe from any thread.
#pragma once

#include <string>
#include <system_error>

namespace mproc {

/// The small, stable set of things that go wrong. Values never change meaning once released.
enum class errc {
  not_started = 1,      ///< join/terminate/kill/exitcode-wait on a process never started
  already_started,      ///< start() called twice on one process
  unknown_entry,        ///< function or class not registered (MPROC_ENTRY / MPROC_PROCESS_CLASS)
  duplicate_entry,      ///< two different functions registered under one name
  unsupported_target,   ///< e.g. a capturing lambda with a start method other than fork
  timeout,              ///< a deadline passed
  interrupted,          ///< SIGINT reached the node while the call was blocked
  spawn_failed,         ///< the OS refused to create the process (fork/posix_spawn failed)
  node_closed,          ///< the node is shutting down or its fork server is gone
  no_node,              ///< no mproc::node exists in this process
  bad_message,          ///< a frame or payload that does not decode (truncated, garbage, wrong version)
  runtime_dir,          ///< the private runtime directory is unsafe or cannot be created
  invalid_argument,     ///< API misuse not covered above (documented per call)
  // Mailboxes (queue, pipe):
  closed,               ///< the queue was closed (put after close; get once drained), or this end was closed
  full,                 ///< a bounded queue stayed full until the deadline (put with a timeout, try_put)
  empty,                ///< nothing arrived before the deadline (try_get, get with a timeout)
  end_of_stream,        ///< no more data can come: every writer is gone, or the peer end was closed
  wrong_type,           ///< the two ends disagree on the message type T
  access_denied,        ///< a peer of another user was refused (SO_PEERCRED), a socket is not private,
                        ///< or a command may not be executed (EACCES)
  message_too_large,    ///< a message or frame over the configured limit
  // Synchronization:
  broken_barrier,       ///< the barrier was aborted, reset, timed out or lost a party (Python's BrokenBarrierError)
  // Pools:
  task_failed,          ///< a pool task threw (mproc::task_error carries its type and message)
  worker_lost,          ///< a pool worker died running the task (SIGKILL, crash, exit), retries used up
  // Subprocess (external commands):
  command_not_found,    ///< no such command: not on PATH, or the named file does not exist (ENOENT)
  command_failed,       ///< a command ended with a nonzero return code where that was asked to be an error
  // Pools, again (values never change once released):
  cancelled,            ///< a pool task was cancelled before a worker took it
  // Actors:
  actor_down,           ///< the actor ended (or never existed) before it could answer
  host_lost,            ///< the process hosting an actor ended; the message names its exit code or signal
  too_many_restarts,    ///< a supervisor's child crashed more often than its restart intensity allows
  // Cluster:
  node_lost,            ///< a remote node could not be reached, or its connection was lost (it died, or
                        ///< the link was cut: found by heartbeat)
};

/// The `mproc` error category; `name()` is "mproc".
const std::error_category& category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// Thrown by the throwing overloads. `code()` is an mproc::errc (or a system errno for
/// OS failures), `what()` carries the context ("start process-3: fork: Resource busy").
class error : public std::system_error {
 public:
  error(std::error_code ec, const std::string& context) : std::system_error(ec, context) {}
  error(errc e, const std::string& context) : std::system_error(make_error_code(e), context) {}
};

/// Throws `mproc::error(ec, context)` when `ec` is set; the glue between the two call forms.
void throw_if(const std::error_code& ec, const std::string& context);

}  // namespace mproc

template <>
struct std::is_error_code_enum<mproc::errc> : std::true_type {};
