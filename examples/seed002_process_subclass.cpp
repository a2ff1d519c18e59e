// Seed 002: a function run in a process, then the same as a Process subclass with run().
#include <mproc/mproc.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

void func(std::string msg) {
  for (int i = 0; i < 3; ++i) {
    std::cout << msg << std::endl;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}
MPROC_ENTRY(func);

// Like `class Worker(multiprocessing.Process)`: default-constructible, its state reaches the
// child through inspect(), registered once.
class worker : public mproc::process {
 public:
  worker() = default;
  explicit worker(std::string msg) : msg_(std::move(msg)) {}
  template <class F>
  friend void inspect(F& f, worker& w) { f(w.msg_); }

 protected:
  void run() override {
    for (int i = 0; i < 3; ++i) std::cout << name() << " says " << msg_ << std::endl;
  }

 private:
  std::string msg_;
};
MPROC_PROCESS_CLASS(worker);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  mproc::process p{node, func, std::string{"hello"}};
  p.start();
  p.join();
  std::cout << "Sub-process done." << std::endl;

  worker w{"hi from a subclass"};
  w.set_name("Process0");
  w.start();
  w.join();
  std::cout << "Subclass process done, exitcode " << *w.exitcode() << std::endl;
}
