// A program for tests that must kill or interrupt a node's process from outside.
//   node_helper orphans <method>   spawn a child that spawns a grandchild; print all pids; block
//   node_helper sigint-join        spawn two sleepers, block in join(); print "interrupted" on SIGINT
//   node_helper sigint-busy        spawn two sleepers, then spin (not blocked in mproc)
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

namespace {
void sleep_forever() { std::this_thread::sleep_for(std::chrono::hours(1)); }
void parent_of_sleeper() {
  auto p = mproc::node::current().spawn(sleep_forever);
  std::cout << "grandchild " << p.pid() << std::endl;
  p.join();
}
}  // namespace
MPROC_ENTRY(sleep_forever);
MPROC_ENTRY(parent_of_sleeper);

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  mproc::node_options opts;
  if (argc > 2) {
    std::string m = argv[2];
    opts.method = m == "spawn" ? mproc::start_method::spawn
                  : m == "fork" ? mproc::start_method::fork
                                : mproc::start_method::forkserver;
  }
  mproc::node node{argc, argv, opts};
  std::cout << "node " << ::getpid() << std::endl;
  if (node.forkserver_pid() != 0) std::cout << "forkserver " << node.forkserver_pid() << std::endl;
  if (mode == "orphans") {
    auto p = node.spawn(parent_of_sleeper);
    std::cout << "child " << p.pid() << std::endl;
    p.join();
    return 0;
  }
  auto a = node.spawn(sleep_forever);
  auto b = node.spawn(sleep_forever);
  std::cout << "child " << a.pid() << "\nchild " << b.pid() << "\nready" << std::endl;
  if (mode == "sigint-join") {
    try {
      a.join();
    } catch (const mproc::error& e) {
      std::cout << (e.code() == mproc::errc::interrupted ? "interrupted" : "other error") << std::endl;
      return 3;
    }
    return 0;
  }
  for (;;) {  // sigint-busy: working, not inside any mproc call. (The yield lets TSan, which
    std::this_thread::yield();  // delivers signals only at intercepted calls, see SIGINT.)
  }
}
