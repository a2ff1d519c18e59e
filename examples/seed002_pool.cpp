// Seed 002, Pool: ten messages through a pool of 4 processes with apply_async, then
// close() and join(). The lines come four at a time, one per worker.
//
//   def func(msg):
//       print(" Sub-process(es) %s said %s." % (os.getpid(), msg))
//       time.sleep(1)
//   if __name__ == "__main__":
//       pool = multiprocessing.Pool(processes=4)
//       print("parent id is %s" % os.getpid())
//       for i in range(10):
//           pool.apply_async(func, ("hello %d" % i,))
//       pool.close()
//       pool.join()
//
// Each task sleeps 0.1 s instead of 1 s, so the test suite stays quick. And map() for the same
// ten messages, whose results come back in order.
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

void func(std::string msg) {
  std::printf(" Sub-process(es) %d said %s.\n", ::getpid(), msg.c_str());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}
MPROC_ENTRY(func);

std::string shout(std::string msg) { return msg + "!"; }
MPROC_ENTRY(shout);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  {
    mproc::pool pool{node, 4};
    std::printf("parent id is %d\n", ::getpid());
    std::fflush(stdout);
    for (int i = 0; i < 10; ++i) pool.apply_async(func, "hello " + std::to_string(i));
    pool.close();
    pool.join();
  }
  mproc::pool pool{node, 4};
  std::vector<std::string> messages;
  for (int i = 0; i < 10; ++i) messages.push_back("hello " + std::to_string(i));
  for (const auto& s : pool.map(shout, messages)) std::printf("%s ", s.c_str());
  std::printf("\n");
}
