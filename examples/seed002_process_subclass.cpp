// Seed 002: a function run in a process, then the same work as a Process subclass.
//
//   def func(msg):
//     for i in range(3):
//       print(msg)
//       time.sleep(1)
//   if __name__ == "__main__":
//     p = multiprocessing.Process(target=func, args=("hello", ))
//     p.start()
//     p.join()
//     print("Sub-process done.")
//
// The subclass form, as in the seed's ProduceMethod(multiprocessing.Process) (sleeps shortened
// to 0.05 s):
//
//   class FuncProcess(multiprocessing.Process):
//     def __init__(self, msg):
//       multiprocessing.Process.__init__(self)
//       self.msg = msg
//     def run(self):
//       for i in range(3):
//         print(self.msg)
//         time.sleep(1)
#include <mproc/mproc.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <utility>

void func(std::string msg) {
  for (int i = 0; i < 3; ++i) {
    std::cout << msg << std::endl;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}
MPROC_ENTRY(func);

// The child rebuilds the object, so the class needs a default constructor, and its data members
// travel to the child through inspect() (the same inspect CAF uses). Python pickles the object.
class func_process : public mproc::process {
 public:
  func_process() = default;
  explicit func_process(std::string msg) : msg_(std::move(msg)) {}

  template <class F>
  friend void inspect(F& f, func_process& x) { f(x.msg_); }

 protected:
  void run() override {  // runs in the child, with msg_ as it was at start()
    for (int i = 0; i < 3; ++i) {
      std::cout << msg_ << std::endl;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  std::string msg_;
};
MPROC_PROCESS_CLASS(func_process);  // once, at namespace scope, like MPROC_ENTRY

int main(int argc, char** argv) {
  mproc::node node{argc, argv};

  mproc::process p{node, func, std::string{"hello"}};
  p.start();
  p.join();
  std::cout << "Sub-process done." << std::endl;

  func_process fp{"hello from a subclass"};  // the subclass needs no node: it uses this one
  fp.start();
  fp.join();
  std::cout << "Sub-process (subclass) done." << std::endl;
}
