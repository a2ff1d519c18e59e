// One function under each start method, as with Python's Process + set_start_method():
//   forkserver (mproc's default): a small server, forked before any thread, forks each child;
//   spawn: a fresh run of this very program, which turns into the child inside mproc::node;
//   fork:  a copy of the calling process, the only method that can run a capturing lambda.
// Under all three, the child's parent_pid is the node's pid (under forkserver the OS parent is
// the fork server, but the process that asked for the child is the node, as in Python).
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <iostream>
#include <string>

void where(std::string method, pid_t node_pid) {
  auto me = mproc::current_process();
  std::cout << method << ": " << me.name << " pid " << me.pid << ", parent " << me.parent_pid
            << (me.parent_pid == node_pid ? " (the node)" : " (NOT the node)") << std::endl;
}
MPROC_ENTRY(where);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  pid_t node_pid = ::getpid();
  std::cout << "node pid " << node_pid << std::endl;

  for (auto m : {mproc::start_method::forkserver, mproc::start_method::spawn,
                 mproc::start_method::fork}) {
    mproc::process p{node, where, std::string{mproc::to_string(m)}, node_pid};
    p.set_start_method(m);  // before start(); node_options::method sets the default for all
    p.start();
    p.join();
  }

  // A capturing lambda needs no MPROC_ENTRY, but only fork can run it: the child is a copy of
  // this process, so `secret` is there. Other methods refuse it (errc::unsupported_target).
  int secret = 42;
  auto peek = [&] {
    auto me = mproc::current_process();
    std::cout << "fork lambda: " << me.name << " pid " << me.pid << ", parent " << me.parent_pid
              << ", sees secret " << secret << std::endl;
  };
  mproc::process refused{node, peek};  // default start method: forkserver
  try {
    refused.start();
  } catch (const mproc::error& e) {
    std::cout << "forkserver refuses the lambda: " << e.what() << std::endl;
  }
  mproc::process l{node, peek};
  l.set_start_method(mproc::start_method::fork);
  l.start();
  l.join();
}
