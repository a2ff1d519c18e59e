// Four workers coordinated the multiprocessing way: they start together on an Event, at most
// two at a time work inside a BoundedSemaphore, and they meet at a Barrier whose action (run by
// exactly one of them) announces the passage. Their results land in a shared Array.
#include <mproc/mproc.hpp>

#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

void passed() { std::cout << "all workers passed the barrier" << std::endl; }
MPROC_ENTRY(passed);

// inside[0]: workers in the semaphore now; inside[1]: the most there ever were.
void worker(int id, mproc::event go, mproc::bounded_semaphore slots, mproc::barrier meet,
            mproc::array<int> inside, mproc::array<int> results) {
  go.wait();
  {
    auto held = slots.hold();
    inside.with_lock([](std::span<int> n) { n[1] = std::max(n[1], ++n[0]); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    results.set(id, id * id);
    inside.with_lock([](std::span<int> n) { --n[0]; });
  }
  meet.wait();
}
MPROC_ENTRY(worker);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  constexpr int workers = 4;
  auto go = mproc::event::create();
  auto slots = mproc::bounded_semaphore::create(2);
  auto meet = mproc::barrier::create(workers, passed);
  auto inside = mproc::array<int>::create(2, 0);
  auto results = mproc::array<int>::create(workers, -1);
  std::vector<mproc::process> ps;
  for (int id = 0; id < workers; ++id) ps.push_back(node.spawn(worker, id, go, slots, meet, inside, results));
  go.set();
  for (auto& p : ps) p.join();
  std::cout << "at most " << inside.get(1) << " workers at once in a semaphore of 2" << std::endl;
  std::cout << "results:";
  for (int r : results.to_vector()) std::cout << ' ' << r;
  std::cout << std::endl;
}
