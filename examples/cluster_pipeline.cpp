// A distributed pipeline: the source and the sink on this node (A), the transform on workers
// that live on two other nodes (B and C), joined over TCP with a shared cookie.
//
// On one machine (what ctest runs): the program starts B and C itself, as copies of itself in
// node mode listening on loopback, and with --kill-one it SIGKILLs C a third of the way through.
// The items C held are sent again to B's workers, and the sink still gets every item once:
//
//   cluster_pipeline [--kill-one]
//
// On real hosts, start the node program on B and C (this same binary, so that they know the
// worker type), then point A at them:
//
//   hostB$ cluster_pipeline --node --listen 0.0.0.0:4242 --cookie-file ~/.mproc-cookie
//   hostC$ cluster_pipeline --node --listen 0.0.0.0:4242 --cookie-file ~/.mproc-cookie
//   hostA$ cluster_pipeline --join hostB:4242 --join hostC:4242 --cookie-file ~/.mproc-cookie
//
// The cookie file holds one line of secret and must be private (chmod 600) on every host.
#include <caf/all.hpp>
#include <mproc/actor_request.hpp>
#include <mproc/cluster.hpp>
#include <mproc/cluster_node_main.hpp>
#include <mproc/node.hpp>
#include <mproc/subprocess.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using work_atom = caf::atom_constant<caf::atom("work")>;
using done_atom = caf::atom_constant<caf::atom("done")>;

/// The transform: squares an item and answers the sender (a one-way message, so that the source
/// can keep several items in flight per worker).
caf::behavior square_worker(caf::event_based_actor* self, int) {
  return {[self](work_atom, std::uint64_t seq, std::int64_t x) {
    self->send(caf::actor_cast<caf::actor>(self->current_sender()), done_atom::value, seq, x * x);
  }};
}
MPROC_ACTOR(square_worker);

namespace {

constexpr std::uint64_t items = 1000;
constexpr std::size_t window = 8;  // items in flight per worker: bounded, like a pool's read-ahead
namespace sp = mproc::subprocess;

struct endpoint {
  std::string host;
  std::uint16_t port = 0;
};

/// Starts this program in node mode on loopback and learns its port from its first line.
endpoint start_local_node(sp::popen& p, const std::string& self_exe, const std::string& cookie_file) {
  sp::options o;
  o.stdout_mode = sp::stream::pipe;
  p = sp::popen({self_exe, "--node", "--listen", "127.0.0.1:0", "--cookie-file", cookie_file}, o);
  auto line = p.read_stdout_line(std::chrono::seconds(20));
  auto colon = line ? line->rfind(':') : std::string::npos;
  if (colon == std::string::npos) throw std::runtime_error("a node did not start");
  return {"127.0.0.1", static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)))};
}

std::string write_local_cookie(const std::filesystem::path& dir) {
  std::random_device rd;
  std::string secret;
  for (int i = 0; i < 4; ++i) secret += std::to_string(rd());
  auto path = (dir / "cookie").string();
  std::ofstream{path} << secret << "\n";
  ::chmod(path.c_str(), 0600);
  return path;
}

int run_source_and_sink(int argc, char** argv) {
  mproc::node node{argc, argv};
  bool kill_one = false;
  std::string cookie_file;
  std::vector<endpoint> remotes;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--kill-one") kill_one = true;
    else if (a == "--cookie-file" && i + 1 < argc) cookie_file = argv[++i];
    else if (a == "--join" && i + 1 < argc) {
      std::string hp = argv[++i];
      auto colon = hp.rfind(':');
      remotes.push_back({hp.substr(0, colon), static_cast<std::uint16_t>(std::stoi(hp.substr(colon + 1)))});
    }
  }
  std::vector<sp::popen> local_nodes(remotes.empty() ? 2 : 0);
  if (remotes.empty()) {  // everything on this machine
    cookie_file = write_local_cookie(node.runtime_dir());
    for (auto& p : local_nodes) remotes.push_back(start_local_node(p, "/proc/self/exe", cookie_file));
  }
  auto cookie = mproc::cluster::read_cookie_file(cookie_file);

  // Two workers on every node: the transform "pool".
  std::vector<caf::actor> workers;
  std::map<caf::actor_addr, std::string> where;
  for (std::size_t n = 0; n < remotes.size(); ++n) {
    auto remote = mproc::cluster::join(node, remotes[n].host, remotes[n].port, {.cookie = cookie});
    for (int w = 0; w < 2; ++w) {
      workers.push_back(remote.spawn("square_worker", 0));
      where[workers.back().address()] = std::string(1, static_cast<char>('B' + n));
    }
  }

  caf::scoped_actor self{mproc::actor_system()};
  std::deque<std::uint64_t> todo;  // the source: items 1..n (re-sent ones go first)
  for (std::uint64_t i = 1; i <= items; ++i) todo.push_back(i);
  std::map<caf::actor_addr, std::set<std::uint64_t>> in_flight;
  std::set<caf::actor_addr> alive;
  for (auto& w : workers) {
    self->monitor(w);
    alive.insert(w.address());
  }
  std::set<std::uint64_t> seen;  // the sink: every item once
  std::int64_t sum = 0;
  std::map<std::string, std::uint64_t> per_node;
  auto refill = [&] {
    for (auto& w : workers) {
      auto& mine = in_flight[w.address()];
      while (alive.count(w.address()) && mine.size() < window && !todo.empty()) {
        auto seq = todo.front();
        todo.pop_front();
        mine.insert(seq);
        self->send(w, work_atom::value, seq, static_cast<std::int64_t>(seq));
      }
    }
  };
  refill();
  bool killed = false;
  while (seen.size() < items) {
    bool progress = true;
    self->receive(
        [&](done_atom, std::uint64_t seq, std::int64_t squared) {
          auto from = self->current_sender() ? self->current_sender()->address() : caf::actor_addr{};
          in_flight[from].erase(seq);
          if (seen.insert(seq).second) {
            sum += squared;
            ++per_node[where[from]];
          }
          if (kill_one && !killed && seen.size() == items / 3 && !local_nodes.empty()) {
            local_nodes.back().kill();  // node C dies with items in flight
            killed = true;
          }
        },
        [&](const caf::down_msg& dm) {
          // A worker's node was lost: what it held goes to the others, first.
          alive.erase(dm.source);
          auto& lost = in_flight[dm.source];
          todo.insert(todo.begin(), lost.begin(), lost.end());
          lost.clear();
          std::cout << "a worker on node " << where[dm.source] << " was lost (" << mproc::to_error_code(dm.reason).message()
                    << "); its items go to the others" << std::endl;
        },
        caf::after(std::chrono::seconds(30)) >> [&] { progress = false; });
    if (!progress || alive.empty()) {
      std::cout << "stalled with " << seen.size() << " of " << items << " items" << std::endl;
      return 1;
    }
    refill();
  }
  std::int64_t expected = 0;
  for (std::uint64_t i = 1; i <= items; ++i) expected += static_cast<std::int64_t>(i * i);
  for (auto& [name, count] : per_node) std::cout << "node " << name << " squared " << count << " items" << std::endl;
  std::cout << "sink: all " << seen.size() << " items, each once, sum of squares " << sum
            << (sum == expected ? " (correct)" : " (WRONG)") << std::endl;
  for (auto& p : local_nodes) p.terminate();
  for (auto& p : local_nodes) p.wait();
  return sum == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string{argv[1]} == "--node") {
    // Node mode: drop "--node" and serve (mproc-node with this program's actor types).
    std::vector<char*> args{argv[0]};
    args.insert(args.end(), argv + 2, argv + argc);
    args.push_back(nullptr);
    return mproc::cluster::node_main(argc - 1, args.data());
  }
  return run_source_and_sink(argc, argv);
}
