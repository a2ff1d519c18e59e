// Seed 000: download() and browse() run in two processes at the same time, so the whole program
// takes as long as the slower one, not the sum. (Sleeps shortened from 4 s / 6 s to 0.4 / 0.6 s.)
//
//   def main():
//       p1 = Process(target=download, args=())
//       p2 = Process(target=browse, args=())
//       p = [p1, p2]
//       for i in range(2): p[i].start()
//       for i in range(2): p[i].join()
//       print('all done')
#include <mproc/mproc.hpp>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

// Python's time.ctime(): "Sun Mar 31 15:54:41 2019".
std::string ctime_now() {
  std::time_t t = std::time(nullptr);
  std::string s = std::ctime(&t);
  s.pop_back();  // ctime ends with '\n'
  return s;
}

void download() {
  std::cout << "start download at: " << ctime_now() << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // sleep(4)
  std::cout << "download done at: " << ctime_now() << std::endl;
}
MPROC_ENTRY(download);

void browse() {
  std::cout << "start browse at: " << ctime_now() << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // sleep(6)
  std::cout << "browse done at: " << ctime_now() << std::endl;
}
MPROC_ENTRY(browse);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto t0 = std::chrono::steady_clock::now();

  std::vector<mproc::process> p;  // p = [p1, p2]
  p.emplace_back(node, download);
  p.emplace_back(node, browse);
  for (auto& x : p) x.start();  // both run from here on...
  for (auto& x : p) x.join();   // ...and we wait for both
  std::cout << "all done" << std::endl;

  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
  std::cout << "elapsed " << std::fixed << std::setprecision(2) << elapsed.count()
            << " s (the slower task alone takes 0.60 s; one after the other would take 1.00 s)"
            << std::endl;
}
