// A node for orphan_test.cpp to SIGKILL from outside (the node's process must be a process of
// its own for that).
//
//   orphan_helper <forkserver|spawn|fork> [runtime-root]
//
// Builds a small tree with the given start method and reports it on stdout, one "<what> <pid>"
// line each (lines from different processes arrive in any order):
//
//   node <pid>                  this process
//   runtime-dir <path>          its runtime directory (under runtime-root when given)
//   forkserver <pid>            the node's fork server, if it runs one
//   child <pid>                 a child of the node ...
//   child-forkserver <pid>      ... the fork server of the child's own node, if it runs one
//   grandchild <pid>            ... and the child's child, printed by the grandchild itself
//   daemon-grandchild <pid>     ... and a daemon child of the child, printed by itself
//
// then blocks in join() until it is killed.
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

namespace {

/// One line, one write: lines of several processes share the pipe and must not interleave.
void announce(const std::string& what, pid_t pid) {
  std::ostringstream line;
  line << what << ' ' << pid << '\n';
  std::cout << line.str() << std::flush;
}

void sleep_forever(std::string what) {
  announce(what, ::getpid());
  std::this_thread::sleep_for(std::chrono::hours(1));
}

void parent_of_sleepers() {
  auto& node = mproc::node::current();
  auto g = node.spawn(sleep_forever, std::string{"grandchild"});
  mproc::process d{node, sleep_forever, std::string{"daemon-grandchild"}};
  d.set_daemon(true);
  d.start();
  if (node.forkserver_pid() != 0) announce("child-forkserver", node.forkserver_pid());
  g.join();
}

}  // namespace

MPROC_ENTRY(sleep_forever);
MPROC_ENTRY(parent_of_sleepers);

int main(int argc, char** argv) {
  mproc::node_options opts;
  std::string method = argc > 1 ? argv[1] : "forkserver";
  if (method == "spawn") opts.method = mproc::start_method::spawn;
  else if (method == "fork") opts.method = mproc::start_method::fork;
  else if (method != "forkserver") {
    std::cerr << "usage: orphan_helper <forkserver|spawn|fork> [runtime-root]\n";
    return 2;
  }
  if (argc > 2) opts.runtime_root = argv[2];
  mproc::node node{argc, argv, opts};
  announce("node", ::getpid());
  std::cout << "runtime-dir " << node.runtime_dir().string() << std::endl;
  if (node.forkserver_pid() != 0) announce("forkserver", node.forkserver_pid());
  auto p = node.spawn(parent_of_sleepers);
  announce("child", p.pid());
  p.join();  // until SIGKILL
  return 0;
}
