// hello_process — the first program of seed 001, in C++.
//
//   from multiprocessing import Process
//   def f(name):
//       print('hello', name)
//   if __name__ == '__main__':
//       p = Process(target=f, args=('world',))
//       p.start()
//       p.join()
//
// Then two things a C++ programmer wants next: the child's exit code (as Python reports it),
// and an exception thrown in the child arriving in the parent with its type and message.
#include <mproc/mproc.hpp>

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

// The code the child runs. Parent and children share stdout: end lines with std::endl, which
// flushes, so every line leaves its process at once and in one piece.
void f(std::string name) { std::cout << "hello " << name << std::endl; }
MPROC_ENTRY(f);  // makes f startable by name in another process

// A child that fails: exit(n) like sys.exit(n), or an uncaught exception.
void fail(int code) {
  if (code != 0) std::exit(code);
  throw std::runtime_error("no work today");
}
MPROC_ENTRY(fail);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};  // first thing in main, like `if __name__ == '__main__':`

  mproc::process p{node, f, std::string{"world"}};  // Process(target=f, args=('world',))
  p.start();
  p.join();

  // Beyond the seed. exitcode() is a std::optional<int>: empty until the child has exited.
  std::cout << p.name() << " exitcode " << *p.exitcode() << std::endl;  // 0: f returned

  auto q = node.spawn(fail, 3);  // spawn = construct + start
  q.join();
  std::cout << q.name() << " exitcode " << *q.exitcode() << std::endl;  // 3: exit(3)

  // The child reports its exception on stderr ("Process process-3: ...", as Python prints a
  // traceback), exits with 1, and the parent receives the exception's type and message.
  auto r = node.spawn(fail, 0);
  r.join();
  if (auto e = r.exception())
    std::cout << r.name() << " exitcode " << *r.exitcode() << ", raised " << e->type << ": "
              << e->message << std::endl;
}
