// A node program for the cluster tests: mproc-node plus the tests' actor types (cluster_test_actors.hpp).
//
// With `--sigint-node COOKIE_FILE` it is instead a listening node that handles SIGINT as a
// Python program does (mproc::node's default: blocked calls fail with errc::interrupted, and
// with none blocked the node reaps its children and dies of SIGINT), busy in main.
// With `--sigint-pool-join COOKIE_FILE PORT` it joins the node at 127.0.0.1:PORT, gives a pool
// of one worker there a task of a minute, closes the pool, prints "joining" and blocks in its
// join(); on errc::interrupted it prints "interrupted" and returns 3 (4 for any other outcome).
#include <mproc/cluster.hpp>
#include <mproc/cluster_pool.hpp>
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

int sigint_pool_join(mproc::node& node, const char* cookie_file, int port) {
  auto far = mproc::cluster::join(node, "127.0.0.1", static_cast<std::uint16_t>(port),
                                  {.cookie = mproc::cluster::read_cookie_file(cookie_file)});
  mproc::pool_options one;
  one.workers = 1;
  auto pool = mproc::cluster::make_pool({far}, one);
  auto task = pool.apply_async(cluster_test::slow_pid_task, 60000);
  pool.close();
  std::cout << "joining" << std::endl;
  try {
    pool.join();
    std::cout << "join-returned" << std::endl;
  } catch (const mproc::error& e) {
    std::cout << (e.code() == mproc::errc::interrupted ? "interrupted" : e.what()) << std::endl;
    if (e.code() == mproc::errc::interrupted) return 3;
  }
  return 4;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string{argv[1]} == "--sigint-node") {
    mproc::node node{argc, argv};  // first: with the spawn method this image may be a child
    return sigint_node(node, argv[2]);
  }
  if (argc == 4 && std::string{argv[1]} == "--sigint-pool-join") {
    mproc::node node{argc, argv};
    return sigint_pool_join(node, argv[2], std::stoi(argv[3]));
  }
  return mproc::cluster::node_main(argc, argv);
}
