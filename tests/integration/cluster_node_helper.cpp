// A node program for the cluster tests: mproc-node plus the tests' actor types (cluster_test_actors.hpp).
//
// With `--sigint-node COOKIE_FILE` it is instead a listening node that handles SIGINT as a
// Python program does (mproc::node's default: blocked calls fail with errc::interrupted, and
// with none blocked the node reaps its children and dies of SIGINT), busy in main.
#include <mproc/cluster.hpp>
#include <mproc/cluster_node_main.hpp>
#include <mproc/node.hpp>

#include <atomic>
#include <iostream>
#include <string>

#include "cluster_test_actors.hpp"

namespace {

int sigint_node(mproc::node& node, const char* cookie_file) {
  auto l = mproc::cluster::listen(node, {.cookie = mproc::cluster::read_cookie_file(cookie_file)});
  std::cout << "mproc-node listening on 127.0.0.1:" << l.port() << std::endl;
  std::atomic<unsigned long> spin{0};
  for (;;) spin.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string{argv[1]} == "--sigint-node") {
    mproc::node node{argc, argv};  // first: with the spawn method this image may be a child
    return sigint_node(node, argv[2]);
  }
  return mproc::cluster::node_main(argc, argv);
}
