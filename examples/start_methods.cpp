// One function under the three start methods, and a capturing lambda (fork only).
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <iostream>
#include <string>

void where(std::string method) {
  auto me = mproc::current_process();
  std::cout << method << ": " << me.name << " pid " << me.pid << ", parent " << me.parent_pid << std::endl;
}
MPROC_ENTRY(where);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  std::cout << "node pid " << ::getpid() << std::endl;
  for (auto m : {mproc::start_method::forkserver, mproc::start_method::spawn, mproc::start_method::fork}) {
    mproc::process p{node, where, std::string{mproc::to_string(m)}};
    p.set_start_method(m);
    p.start();
    p.join();
  }
  int secret = 42;  // captured by reference: only fork copies the parent's memory
  mproc::process l{node, [&] { std::cout << "lambda sees secret " << secret << std::endl; }};
  l.set_start_method(mproc::start_method::fork);
  l.start();
  l.join();
}
