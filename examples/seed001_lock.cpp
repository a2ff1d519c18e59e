// Seed 001, Lock: ten processes print one line each, never interleaved.
//
//   def f(l, i):
//       l.acquire()
//       try:
//           print('this is', i)
//       finally:
//           l.release()
//   lock = Lock()
//   for num in range(10):
//       Process(target=f, args=(lock, num)).start()
//
// hold() is the `try/finally` (or `with lock:`): the lock is released when `held` goes, also
// when the code throws. Unlike Python's, the lock survives a holder that dies holding it: the
// next one gets it at once and is told (held.owner_died()).
#include <mproc/mproc.hpp>

#include <iostream>

void f(mproc::lock l, int i) {
  auto held = l.hold();
  std::cout << "this is " << i << std::endl;
}
MPROC_ENTRY(f);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto lock = mproc::lock::create();
  for (int num = 0; num < 10; ++num) node.spawn(f, lock, num);
}  // the node joins its children here, as Python does at exit
