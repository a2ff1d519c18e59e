// Seed 001, Pipe: a child sends a list through one end of a pipe, the parent receives it.
//
//   def f(conn):
//       conn.send([11, None, 'lily'])
//       conn.close()
//   conn1, conn2 = Pipe()
//   p = Process(target=f, args=(conn2,)); p.start(); print(conn1.recv()); p.join()
//
// Also Pipe(duplex=False): a reader end and a writer end, where sending on the reader end does
// not compile. Ends travel to children as arguments (their descriptors go with the start
// message); the parent closes its copy of an end it gave away, so the reader sees the end of
// the stream once the child is done.
#include <mproc/mproc.hpp>

#include <iostream>
#include <optional>
#include <string>
#include <tuple>

using item = std::tuple<int, std::optional<int>, std::string>;

void f(mproc::pipe<item> conn) {
  conn.send({11, std::nullopt, "lily"});
  conn.close();
}
MPROC_ENTRY(f);

void one_way(mproc::pipe_writer<std::string> w) {
  for (const char* word : {"one", "way", "only"}) w.send(word);
}
MPROC_ENTRY(one_way);

int main(int argc, char** argv) {
  mproc::node node{argc, argv};

  auto [conn1, conn2] = mproc::make_pipe<item>();  // duplex, as Pipe()
  auto p = node.spawn(f, conn2);
  auto [number, nothing, name] = conn1.recv();
  std::cout << "[" << number << ", " << (nothing ? std::to_string(*nothing) : "None") << ", '" << name << "']"
            << std::endl;
  p.join();

  auto [reader, writer] = mproc::make_simplex_pipe<std::string>();  // Pipe(duplex=False)
  auto q = node.spawn(one_way, writer);
  writer.close();  // ours; the child's copy closes when it is done
  try {
    for (;;) std::cout << reader.recv() << std::endl;
  } catch (const mproc::error& e) {
    std::cout << "end of stream: " << (e.code() == mproc::errc::end_of_stream ? "yes" : e.what()) << std::endl;
  }
  q.join();
}
