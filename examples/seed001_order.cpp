// Seed 001: the order of parent and child output. start() returns at once; the parent goes on.
// As in Python, the node (like the interpreter at exit) joins its non-daemon child before the
// program ends, so "child process end" still comes after "main process end".
#include <mproc/mproc.hpp>

#include <chrono>
#include <iostream>
#include <thread>

void run() {
  std::cout << "child process start" << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::cout << "child process end" << std::endl;
}
MPROC_ENTRY(run);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  std::cout << "main process start" << std::endl;
  mproc::process p{node, run};
  p.start();
  std::cout << "main process end" << std::endl;
}  // ~node joins p here
