// Seed 001, first program: Process(target=f, args=('world',)); start(); join().
// Then what mproc adds: exit codes like Python's, and a child's exception in the parent.
#include <mproc/mproc.hpp>

#include <iostream>
#include <stdexcept>
#include <string>

void f(std::string name) { std::cout << "hello " << name << std::endl; }
MPROC_ENTRY(f);  // one line makes f startable in another process

void fail(int code) {
  if (code == 0) throw std::runtime_error("no work today");
  std::exit(code);
}
MPROC_ENTRY(fail);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};  // first in main, like `if __name__ == "__main__"`

  mproc::process p{node, f, std::string{"world"}};
  p.start();
  p.join();
  std::cout << p.name() << " exited with " << *p.exitcode() << std::endl;

  auto q = node.spawn(fail, 3);  // construct + start
  q.join();
  std::cout << q.name() << " exited with " << *q.exitcode() << std::endl;

  auto r = node.spawn(fail, 0);  // its exception is printed by the child and reaches us
  r.join();
  std::cout << r.name() << " exited with " << *r.exitcode() << ": " << r.exception()->type << ": "
            << r.exception()->message << std::endl;
}
