// Seeds 000, 003 and 004: one process writes to a Queue, another reads from it.
//
//   def write(q):
//       print('Process to write: %s' % os.getpid())
//       for value in ['A','B','C']:
//           print('Put %s to queue...' % value)
//           q.put(value)
//           time.sleep(random.random())
//   def read(q):
//       print('Process to read: %s' % os.getpid())
//       while True:
//           value = q.get(True)
//           print('Get %s from queue.' % value)
//   q = Queue(); pw = Process(target=write, args=(q,)); pr = Process(target=read, args=(q,))
//   pw.start(); pr.start(); pw.join(); pr.terminate()
//
// (write and read are POSIX functions in C++, hence write_values and read_values.)
// The Python program may terminate the reader before it printed the last value. Here the
// reader marks each value done (task_done) and the parent waits for that (join) before it
// terminates the reader: every value is printed, every time.
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>

void write_values(mproc::queue<std::string> q) {
  std::cout << "Process to write: " << ::getpid() << std::endl;
  std::mt19937 rng{std::random_device{}()};
  for (std::string value : {"A", "B", "C"}) {
    std::cout << "Put " << value << " to queue..." << std::endl;
    q.put(value);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
  }
}
MPROC_ENTRY(write_values);

void read_values(mproc::queue<std::string> q) {
  std::cout << "Process to read: " << ::getpid() << std::endl;
  for (;;) {
    auto value = q.get();
    std::cout << "Get " << value << " from queue." << std::endl;
    q.task_done();
  }
}
MPROC_ENTRY(read_values);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto q = node.make_queue<std::string>();
  auto pw = node.spawn(write_values, q);
  auto pr = node.spawn(read_values, q);
  pw.join();
  q.join();  // every value put has been read and printed
  pr.terminate();
  pr.join();
  std::cout << "reader terminated, exitcode " << *pr.exitcode() << std::endl;
}
