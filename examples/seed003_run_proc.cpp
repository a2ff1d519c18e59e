// Seeds 003 and 004: a child process runs run_proc('test'); parent and child print their pids.
//
//   def run_proc(name):
//       print('Run child process %s (%s)...' % (name, os.getpid()))
//
//   if __name__ == '__main__':
//       print('Parent process %s.' % os.getpid())
//       p = Process(target=run_proc, args=('test',))
//       print('Child process will start.')
//       p.start()
//       p.join()
//       print('Child process end.')
#include <mproc/mproc.hpp>
#include <unistd.h>  // getpid(), Python's os.getpid()

#include <iostream>
#include <string>

// The code the child runs.
void run_proc(std::string name) {
  std::cout << "Run child process " << name << " (" << ::getpid() << ")..." << std::endl;
}
MPROC_ENTRY(run_proc);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  std::cout << "Parent process " << ::getpid() << "." << std::endl;
  mproc::process p{node, run_proc, std::string{"test"}};  // created, not running yet
  std::cout << "Child process will start." << std::endl;
  p.start();
  p.join();  // wait until run_proc has returned in the child
  std::cout << "Child process end." << std::endl;
}
