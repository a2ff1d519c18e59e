// Seed 000: download() and browse() run at the same time; the total is the slower one.
// (Sleeps shortened from 4 s / 6 s to 0.4 s / 0.6 s.)
#include <mproc/mproc.hpp>

#include <chrono>
#include <ctime>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

static std::string now() {
  std::time_t t = std::time(nullptr);
  std::string s = std::ctime(&t);
  return s.substr(0, s.size() - 1);
}

void download() {
  std::cout << "start download at: " << now() << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::cout << "download done at: " << now() << std::endl;
}
MPROC_ENTRY(download);

void browse() {
  std::cout << "start browse at: " << now() << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  std::cout << "browse done at: " << now() << std::endl;
}
MPROC_ENTRY(browse);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<mproc::process> p;
  p.emplace_back(node, download);
  p.emplace_back(node, browse);
  for (auto& x : p) x.start();
  for (auto& x : p) x.join();
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
  std::cout << "all done" << std::endl;
  std::cout << "elapsed " << elapsed.count() << " s (the slower task takes 0.6 s)" << std::endl;
  return elapsed.count() < 1.0 ? 0 : 1;  // concurrent, not 0.4 + 0.6 s
}
