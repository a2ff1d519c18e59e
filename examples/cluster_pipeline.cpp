// A distributed pipeline: the source and the sink on this node (A), the transform in a pool whose
// workers live on two other nodes (B and C), joined over TCP with a shared cookie.
//
// On one machine (what ctest runs): the program starts B and C itself, as copies of itself in
// node mode listening on loopback, and with --kill-one it SIGKILLs C a third of the way through.
// The pool sends the chunks C held to B, and the sink still gets every item once:
//
//   cluster_pipeline [--kill-one]
//
// On real hosts, start the node program on B and C (this same binary, so that they know the
// transform), then point A at them:
//
//   hostB$ cluster_pipeline --node --listen 0.0.0.0:4242 --cookie-file ~/.mproc-cookie
//   hostC$ cluster_pipeline --node --listen 0.0.0.0:4242 --cookie-file ~/.mproc-cookie
//   hostA$ cluster_pipeline --join hostB:4242 --join hostC:4242 --cookie-file ~/.mproc-cookie
//
// The cookie file holds one line of secret and must be private (chmod 600) on every host.
#include <mproc/cluster.hpp>
#include <mproc/cluster_node_main.hpp>
#include <mproc/cluster_pool.hpp>
#include <mproc/node.hpp>
#include <mproc/subprocess.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

/// The transform, run by a worker process of B or C: the item, its square, and where it ran.
std::tuple<std::int64_t, std::int64_t, std::string> square_on_node(std::int64_t x) {
  const char* name = std::getenv("CLUSTER_PIPELINE_NODE");  // set for the nodes started here
  char host[256] = {};
  if (name == nullptr) ::gethostname(host, sizeof host - 1);
  return {x, x * x, name != nullptr ? name : host};
}
MPROC_ENTRY(square_on_node);

namespace {

constexpr std::int64_t items = 1000;
namespace sp = mproc::subprocess;

struct endpoint {
  std::string host;
  std::uint16_t port = 0;
};

/// Starts this program in node mode on loopback and learns its port from its first line.
endpoint start_local_node(sp::popen& p, const std::string& name, const std::string& cookie_file) {
  sp::options o;
  o.stdout_mode = sp::stream::pipe;
  o.env["CLUSTER_PIPELINE_NODE"] = name;
  p = sp::popen({"/proc/self/exe", "--node", "--listen", "127.0.0.1:0", "--cookie-file", cookie_file}, o);
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
    remotes.push_back(start_local_node(local_nodes[0], "B", cookie_file));
    remotes.push_back(start_local_node(local_nodes[1], "C", cookie_file));
  }
  auto cookie = mproc::cluster::read_cookie_file(cookie_file);
  std::vector<mproc::cluster::remote_node> nodes;
  for (auto& r : remotes) nodes.push_back(mproc::cluster::join(node, r.host, r.port, {.cookie = cookie}));

  {
    mproc::pool_options options;
    options.workers = 2;  // worker processes on each node
    auto pool = mproc::cluster::make_pool(nodes, options);
    std::vector<std::int64_t> source;
    for (std::int64_t i = 1; i <= items; ++i) source.push_back(i);
    std::set<std::int64_t> seen;  // the sink: every item once
    std::int64_t sum = 0;
    std::map<std::string, std::int64_t> per_node;
    for (auto [x, squared, where] : pool.imap_unordered(square_on_node, source, 10)) {
      if (seen.insert(x).second) sum += squared;
      ++per_node[where];
      if (kill_one && seen.size() == items / 3 && !local_nodes.empty()) {
        local_nodes.back().kill();  // node C dies with chunks in flight
        std::cout << "killed node C after " << seen.size() << " items" << std::endl;
      }
    }
    std::int64_t expected = 0;
    for (std::int64_t i = 1; i <= items; ++i) expected += i * i;
    for (auto& [name, count] : per_node) std::cout << "node " << name << " squared " << count << " items" << std::endl;
    std::cout << "sink: all " << seen.size() << " items, each once, sum of squares " << sum
              << (sum == expected && seen.size() == static_cast<std::size_t>(items) ? " (correct)" : " (WRONG)") << std::endl;
  }
  for (auto& p : local_nodes) p.terminate();
  for (auto& p : local_nodes) p.wait();
  return 0;
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
