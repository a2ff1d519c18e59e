// Seeds 003 and 004, Pool: a pool of 4 processes runs 5 long_time_task calls with apply_async;
// the fifth waits for a free worker.
//
//   def long_time_task(name):
//       print('Run task %s (%s)...' % (name, os.getpid()))
//       start = time.time()
//       time.sleep(random.random() * 3)
//       end = time.time()
//       print('Task %s runs %0.2f seconds.' % (name, (end - start)))
//
//   if __name__ == '__main__':
//       print('Parent process %s.' % os.getpid())
//       p = Pool(4)
//       for i in range(5):
//           p.apply_async(long_time_task, args=(i,))
//       print('Waiting for all subprocesses done...')
//       p.close()
//       p.join()
//       print('All subprocesses done.')
//
// The sleeps are a tenth of the seed's (up to 0.3 s), so the test suite stays quick.
#include <mproc/mproc.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

void long_time_task(int name) {
  std::printf("Run task %d (%d)...\n", name, ::getpid());
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  std::mt19937 rng{std::random_device{}()};
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>{0, 300}(rng)));
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("Task %d runs %0.2f seconds.\n", name, took.count());
  std::fflush(stdout);
}
MPROC_ENTRY(long_time_task);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  std::printf("Parent process %d.\n", ::getpid());
  std::fflush(stdout);
  mproc::pool p{node, 4};
  for (int i = 0; i < 5; ++i) p.apply_async(long_time_task, i);
  std::printf("Waiting for all subprocesses done...\n");
  std::fflush(stdout);
  p.close();
  p.join();
  std::printf("All subprocesses done.\n");
}
