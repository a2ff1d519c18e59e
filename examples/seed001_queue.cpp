// Seed 001, Queue: a child puts a list on a queue, the parent prints it.
//
//   def f(q):
//       q.put([11, None, 'lily'])
//   q = Queue(); p = Process(target=f, args=(q,)); p.start(); print(q.get()); p.join()
//
// Python's list of anything becomes a typed value: here a tuple of an int, an optional int
// (None) and a string. Both ends agree on the type at compile time; a handle of another type
// is refused at run time with errc::wrong_type.
#include <mproc/mproc.hpp>

#include <iostream>
#include <optional>
#include <string>
#include <tuple>

using item = std::tuple<int, std::optional<int>, std::string>;

void f(mproc::queue<item> q) { q.put({11, std::nullopt, "lily"}); }
MPROC_ENTRY(f);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};
  auto q = node.make_queue<item>();
  auto p = node.spawn(f, q);
  auto [number, nothing, name] = q.get();
  std::cout << "[" << number << ", " << (nothing ? std::to_string(*nothing) : "None") << ", '" << name << "']"
            << std::endl;
  p.join();
}
