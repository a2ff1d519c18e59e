// Proves an installed mproc works: start a registered function in another process.
#include <mproc/mproc.hpp>

#include <iostream>

int twice(int x) { return x * 2; }
void check(int x) { std::exit(twice(x) == 42 ? 0 : 1); }
MPROC_ENTRY(check);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto p = node.spawn(check, 21);
  p.join();
  std::cout << "consumer child exited with " << *p.exitcode() << std::endl;
  return *p.exitcode();
}
