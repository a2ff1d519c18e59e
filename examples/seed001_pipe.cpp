// Seed 001, Pipe: a child sends a list through one end of a pipe, the parent receives it.
//
//   def f(conn):
//       conn.send([11, None, 'lily'])
//       conn.close()
//   conn1, conn2 = Pipe()
//   p = Process(target=f, args=(conn2,)); p.start(); print(conn1.recv()); p.join()
//
// Also Pipe(duplex=False): a reader end and a writer end, where sending on the reader end does
// not compile. The child gets its end by inheritance (start_method::fork, a lambda capturing
// it); fork copies every descriptor, so each side closes the end it does not use, and the
// reader then sees the end of the stream after the last message.
#include <mproc/mproc.hpp>

#include <iostream>
#include <optional>
#include <string>
#include <tuple>

using item = std::tuple<int, std::optional<int>, std::string>;

int main(int argc, char** argv) {
  mproc::node_options opts;
  opts.method = mproc::start_method::fork;
  mproc::node node{argc, argv, opts};

  auto [conn1, conn2] = mproc::make_pipe<item>();  // duplex, as Pipe()
  auto p = node.spawn([conn = conn2, other = conn1]() mutable {
    other.close();
    conn.send({11, std::nullopt, "lily"});
    conn.close();
  });
  conn2.close();
  auto [number, nothing, name] = conn1.recv();
  std::cout << "[" << number << ", " << (nothing ? std::to_string(*nothing) : "None") << ", '" << name << "']"
            << std::endl;
  p.join();

  auto [reader, writer] = mproc::make_simplex_pipe<std::string>();  // Pipe(duplex=False)
  auto q = node.spawn([w = writer, r = reader]() mutable {
    r.close();
    for (const char* word : {"one", "way", "only"}) w.send(word);
  });
  writer.close();
  try {
    for (;;) std::cout << reader.recv() << std::endl;
  } catch (const mproc::error& e) {
    std::cout << "end of stream: " << (e.code() == mproc::errc::end_of_stream ? "yes" : e.what()) << std::endl;
  }
  q.join();
}
