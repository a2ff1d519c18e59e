// mproc/current_process.hpp — who am I? (multiprocessing.current_process / parent_process)
//
// Thread safety: the returned values are copies; safe from any thread.
#pragma once

#include <sys/types.h>

#include <string>

namespace mproc {

struct process_info {
  std::string name;   ///< "MainProcess" in the program's first process, else the child's name
  pid_t pid;          ///< getpid()
  pid_t parent_pid;   ///< the pid of the process that started this one (the node's process,
                      ///< also when a fork server did the fork); getppid() in MainProcess
  bool daemon;        ///< false in MainProcess
};

process_info current_process();
/// Shorthand for current_process().parent_pid.
pid_t parent_pid();

}  // namespace mproc
