// Seeds 003 and 004: a child process runs run_proc(name); both print their pids.
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <iostream>
#include <string>

void run_proc(std::string name) {
  std::cout << "Run child process " << name << " (" << ::getpid() << ")..." << std::endl;
}
MPROC_ENTRY(run_proc);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  std::cout << "Parent process " << ::getpid() << "." << std::endl;
  mproc::process p{node, run_proc, std::string{"test"}};
  std::cout << "Child process will start." << std::endl;
  p.start();
  p.join();
  std::cout << "Child process end." << std::endl;
}
