#include "cluster_bench.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mproc/cluster.hpp>
#include <mproc/cluster_node_main.hpp>
#include <mproc/queue.hpp>
#include <stdexcept>
#include <string>
#include <utility>

#include "actor_bench.hpp"
#include "caf_remoting_bench.hpp"
#include "temp_dir.hpp"

namespace bench {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("cluster: " + what); }

/// The other node: this binary as a node program listening on a free loopback port.
class other_node {
 public:
  other_node(const std::string& self, const std::filesystem::path& cookie_file)
      : program_{{self, "--cluster-node", "--listen", "127.0.0.1:0", "--cookie-file", cookie_file.string()}} {
    const std::string prefix = "mproc-node listening on 127.0.0.1:";
    auto line = program_.read_line();
    if (line.rfind(prefix, 0) != 0) {
      program_.stop(SIGTERM);  // it does not end on EOF
      fail("the node program said '" + line + "'");
    }
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
  }
  /// SIGTERM: the node program's way to end (it dies of SIGINT after reaping its children).
  ~other_node() { program_.stop(SIGTERM); }
  other_node(const other_node&) = delete;
  other_node& operator=(const other_node&) = delete;

  std::uint16_t port() const noexcept { return port_; }

 private:
  helper_program program_;
  std::uint16_t port_ = 0;
};

/// On the other node: takes `n` values from our queue and puts each back into the other.
void bench_queue_echo(mproc::queue_reader<std::int64_t> in, mproc::queue<std::int64_t> out, int n) {
  for (int i = 0; i < n; ++i) out.put(in.get());
}
MPROC_ENTRY(bench_queue_echo);

/// µs per round trip through a process on the other node: our put, its get and put (each a call
/// to the queue's gateway here), our get.
double queue_round_trip_us(const mproc::cluster::remote_node& remote, mproc::node& node, int n) {
  auto in = node.make_queue<std::int64_t>();
  auto out = node.make_queue<std::int64_t>();
  auto p = remote.spawn_process(bench_queue_echo, in.reader(), out, n + 1);
  in.put(-1);  // the far process has connected before the clock starts
  if (out.get() != -1) fail("queue echo answered out of order");
  auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    in.put(i);
    if (out.get() != i) fail("queue echo answered out of order");
  }
  auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
  p.join();
  return us;
}

}  // namespace

std::vector<figure> cluster_figures(mproc::node& node, const std::string& self, bool quick) {
  const int rounds = quick ? 3 : 5;
  const auto sizes = caf_remoting_sizes(quick);
  mproc::test::temp_dir dir;
  const auto cookie_file = dir / "cookie";
  const std::string cookie = "mproc-bench";
  std::ofstream{cookie_file} << cookie << "\n";
  ::chmod(cookie_file.c_str(), 0600);

  other_node b{self, cookie_file};
  auto remote = mproc::cluster::join(node, "127.0.0.1", b.port(), {.cookie = cookie});
  auto echo = remote.spawn("bench_echo", 0);
  auto counter = remote.spawn("bench_counter", 0);

  std::map<std::string, series> s;
  auto add = [&](const std::string& name, const char* unit, const char* better) {
    s[name] = series{name, unit, better, {}};
  };
  add("cluster.request.rtt", "us", "lower");
  add("cluster.oneway.throughput", "msg/s", "higher");
  add("cluster.queue.round_trip", "us", "lower");
  add("caf_remoting.request.rtt.unpinned.cluster_run", "us", "lower");
  add("caf_remoting.oneway.throughput.cluster_run", "msg/s", "higher");
  std::int64_t expected = 0;
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "cluster round %d/%d\n", round + 1, rounds);
    auto measure_mproc = [&] {
      s["cluster.request.rtt"].samples.push_back(actor_request_rtt_us(echo, sizes.requests));
      s["cluster.oneway.throughput"].samples.push_back(actor_oneway_msgs_per_s(counter, sizes.oneway, expected));
      s["cluster.queue.round_trip"].samples.push_back(queue_round_trip_us(remote, node, quick ? 300 : 2000));
    };
    auto measure_caf = [&] {
      auto caf = caf_remoting_round(self, quick);
      s["caf_remoting.request.rtt.unpinned.cluster_run"].samples.push_back(caf.rtt_unpinned_us);
      s["caf_remoting.oneway.throughput.cluster_run"].samples.push_back(caf.oneway_msg_per_s);
    };
    // Which goes first alternates, so neither always runs just after starting processes.
    if (round % 2 == 0) {
      measure_mproc();
      measure_caf();
    } else {
      measure_caf();
      measure_mproc();
    }
  }
  std::vector<figure> out;
  // A queue round trip is two calls across (the far get and put), so its baseline is the same
  // CAF round trip as the request's.
  for (auto [mine, theirs] : {std::pair{"cluster.request.rtt", "caf_remoting.request.rtt.unpinned.cluster_run"},
                              std::pair{"cluster.oneway.throughput", "caf_remoting.oneway.throughput.cluster_run"},
                              std::pair{"cluster.queue.round_trip", "caf_remoting.request.rtt.unpinned.cluster_run"}}) {
    figure f = s.at(mine).summarize();
    figure base = s.at(theirs).summarize();
    set_baseline(f, base);
    out.push_back(f);
    if (std::string{mine} != "cluster.queue.round_trip") out.push_back(base);
  }
  return out;
}

int cluster_node_main(int argc, char** argv) { return mproc::cluster::node_main(argc, argv); }

}  // namespace bench
