// A counter in shared memory incremented by four processes (multiprocessing.Value with its
// lock): the total is exact because each increment is a read-modify-write under the lock, as
// `with counter.get_lock(): counter.value += 1` in Python.
#include <mproc/mproc.hpp>

#include <cstdint>
#include <iostream>
#include <vector>

void add(mproc::value<std::int64_t> counter, int times) {
  for (int i = 0; i < times; ++i) counter.with_lock([](std::int64_t& v) { ++v; });
}
MPROC_ENTRY(add);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto counter = mproc::value<std::int64_t>::create(0);
  constexpr int processes = 4, times = 25000;
  std::vector<mproc::process> workers;
  for (int i = 0; i < processes; ++i) workers.push_back(node.spawn(add, counter, times));
  for (auto& w : workers) w.join();
  std::cout << "counter = " << counter.get() << " (expected " << processes * times << ")" << std::endl;
}
