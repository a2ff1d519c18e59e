// Seed 001: in which order do parent and child print?
//
//   def run():
//       print("子进程开启")           # child process start
//       time.sleep(2)
//       print("子进程结束")           # child process end
//   if __name__ == "__main__":
//       print("主进程启动")           # main process start
//       p = Process(target=run)
//       p.start()
//       print("主进程结束")           # main process end
//
// start() returns as soon as the child exists; the parent does not wait for it and goes on.
// There is no join(): as Python joins its non-daemon children when the interpreter exits, the
// node's destructor joins them when main returns. So "child process end" still comes after
// "main process end". ("child process start" may come before or after "main process end":
// the two processes really run at the same time.)
#include <mproc/mproc.hpp>

#include <chrono>
#include <iostream>
#include <thread>

void run() {
  std::cout << "child process start" << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // time.sleep(2), shortened
  std::cout << "child process end" << std::endl;
}
MPROC_ENTRY(run);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  std::cout << "main process start" << std::endl;
  mproc::process p{node, run};
  p.start();
  std::cout << "main process end" << std::endl;
}  // here ~process only lets go of the handle; ~node then waits for the child to finish
