// Seed 002, producer/consumer with a Queue: two producer processes that stop producing while
// the queue holds 2 or more products, and a consumer that reports the even ones.
//
//   class ProduceMethod(multiprocessing.Process):
//       def run(self):
//           while True:
//               if self.data.qsize() < 2:
//                   self.do_produce(self.name); time.sleep(10)
//               else:
//                   print "queue is %s, stop produce" % self.data.qsize(); time.sleep(1)
//   class ConsumeMethodEven(multiprocessing.Process):
//       def run(self):
//           while True:
//               if self.data.qsize() > 0: self.do_consume(self.name); time.sleep(5)
//               else: print "queue is %s, stop consume" % self.data.qsize(); time.sleep(5)
//
// The Python program runs forever; this one makes 3 products per producer, the consumer takes
// all 6, and the times are milliseconds. qsize() here is exact (the queue's owner counts), not
// an estimate as in Python. The processes are subclasses, like the seed's: their queue handle is
// a data member that reaches the child through inspect().
#include <mproc/mproc.hpp>

#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>

using namespace std::chrono_literals;

constexpr int per_producer = 3;

struct produce_method : mproc::process {
  mproc::queue<int> data;
  void run() override {
    std::mt19937 rng{std::random_device{}()};
    for (int made = 0; made < per_producer;) {
      if (data.qsize() < 2) {
        int product = static_cast<int>(rng() % 11);
        data.put(product);
        std::cout << name() << " produce product -- " << product << std::endl;
        ++made;
        std::this_thread::sleep_for(40ms);
      } else {
        std::cout << "queue is " << data.qsize() << ", stop produce" << std::endl;
        std::this_thread::sleep_for(10ms);
      }
    }
  }
  template <class F>
  friend void inspect(F& f, produce_method& p) {
    f(p.data);
  }
};
MPROC_PROCESS_CLASS(produce_method);

struct consume_method_even : mproc::process {
  mproc::queue<int> data;
  void run() override {
    for (int taken = 0; taken < 2 * per_producer; ++taken) {
      int product = data.get();  // waits while the queue is empty, instead of polling qsize
      if (product % 2 == 0) std::cout << name() << " consume product -- " << product << std::endl;
      std::this_thread::sleep_for(100ms);  // slower than the producers: they have to wait
    }
    std::cout << name() << " consumed " << 2 * per_producer << " products" << std::endl;
  }
  template <class F>
  friend void inspect(F& f, consume_method_even& c) {
    f(c.data);
  }
};
MPROC_PROCESS_CLASS(consume_method_even);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto que = node.make_queue<int>();
  produce_method producers[2];
  for (int i = 0; i < 2; ++i) {
    producers[i].data = que;
    producers[i].set_name("Process" + std::to_string(i));
    producers[i].start();
  }
  consume_method_even consumer;
  consumer.data = que;
  consumer.set_name("Consumer 1");
  consumer.start();
  for (auto& p : producers) p.join();
  consumer.join();
  std::cout << "queue is " << que.qsize() << " at the end" << std::endl;
}
