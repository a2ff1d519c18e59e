// Internal: the shared state behind a process handle; the node's table holds the same object.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fd.hpp"
#include "mproc/detail/transfer.hpp"
#include "mproc/process.hpp"
#include "mproc/start_method.hpp"

namespace mproc::detail {

class node_impl;

struct process_state {
  std::mutex mutex;
  std::condition_variable changed;  // pid known, exit known, or an interrupt

  // Configuration: written before start() only.
  std::string name;
  bool daemon = false;
  std::optional<start_method> method;  // nullopt: the node's default
  std::function<void()> local;         // the target as a closure (fork, and run() in general);
                                       // dropped in the parent once started
  const void* entry_fn = nullptr;      // registered function, if the target is one
  std::vector<std::byte> args;         // its encoded arguments
  transfer_bundle passed;              // duplicates of pipe ends among them (sent with the start
                                       // message, or closed after fork()), and queue tickets to
                                       // release once the process has ended
  std::weak_ptr<node_impl> owner;      // the node that starts (or started) it
  bool bound = false;                  // constructed with a node; else node::current() at start()

  // Life: guarded by `mutex`.
  bool started = false;
  bool self = false;          // the handle of the calling process itself (inside a child)
  std::uint64_t id = 0;       // per node, also names the process
  pid_t pid = 0;
  unique_fd pidfd;            // for race-free signals and is_alive
  unique_fd channel;          // node end of the node<->child channel
  std::error_code spawn_error;
  std::optional<int> exitcode;
  std::optional<remote_exception> exception;
  std::uint64_t interrupts = 0;  // bumped on SIGINT to wake blocked callers
};

}  // namespace mproc::detail
