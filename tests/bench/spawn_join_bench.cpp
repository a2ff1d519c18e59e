// mproc_bench: process start+join cost and idle memory, each beside its baselines measured in
// the same run, round by round (DESIGN.md sections 5 and 7); then the queue figures
// (queue_bench.hpp), the pipe figures (pipe_bench.hpp), the lock figures (lock_bench.hpp), the
// pool figures (pool_bench.hpp), the actor figures (actor_bench.hpp) and the cluster figures
// (cluster_bench.hpp).
//
//   mproc_bench [--quick] [--out FILE] [--no-python] [--only actor|cluster|queue]
//
// Figures (all "lower is better"):
//   spawn_join.{forkserver,spawn,fork}  ms per no-op mproc::process constructed, started and
//                                       joined, one after another, through the public API;
//                                       baseline python.mp_<same method>, else raw fork
//   raw.fork_exit_waitpid               fork + _exit(0) + waitpid, in C
//   raw.posix_spawn_true                posix_spawn of /bin/true + waitpid
//   python.mp_{fork,forkserver,spawn}   ms per multiprocessing Process(target=noop) start+join
//   rss.idle_child_kib                  VmRSS of a sleeping forkserver child
//   rss.node_kib                        VmRSS of a fresh program right after its node started
//   rss.forkserver_kib                  VmRSS of that node's fork server
//   python.{idle_child,parent,forkserver}_kib  the same three for multiprocessing (forkserver)
//
// Every round runs each figure once, so slow phases of a noisy VM hit all of them alike. The
// RSS figures come from fresh programs (this binary with --rss-probe, and python3), one per round.
// Python figures are skipped (and spawn_join.* fall back to raw fork) when python3 is missing.
#include <mproc/mproc.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "temp_dir.hpp"
#include "caf_remoting_bench.hpp"
#include "cluster_bench.hpp"
#include "lock_bench.hpp"
#include "pool_bench.hpp"
#include "actor_bench.hpp"
#include "pipe_bench.hpp"
#include "queue_bench.hpp"

extern char** environ;

namespace {

void noop() {}
void idle() { std::this_thread::sleep_for(std::chrono::seconds(60)); }

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// ---- raw baselines --------------------------------------------------------------------------

void raw_fork_exit_waitpid() {
  pid_t pid = ::fork();
  if (pid < 0) fail(std::string{"fork: "} + std::strerror(errno));
  if (pid == 0) ::_exit(0);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) fail(std::string{"waitpid: "} + std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("raw fork child failed");
}

const char* true_path() {
  static const char* path = ::access("/bin/true", X_OK) == 0 ? "/bin/true" : "/usr/bin/true";
  return path;
}

void raw_posix_spawn_true() {
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  pid_t pid = 0;
  if (int rc = ::posix_spawn(&pid, true_path(), nullptr, nullptr, argv, environ); rc != 0)
    fail(std::string{"posix_spawn /bin/true: "} + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) fail(std::string{"waitpid: "} + std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("/bin/true failed");
}

// ---- mproc ----------------------------------------------------------------------------------

/// One measured unit: a no-op process through the public API, started and joined.
void mproc_spawn_join(mproc::node& node, mproc::start_method m) {
  mproc::process p{node, noop};
  p.set_start_method(m);
  p.start();
  p.join();
  if (p.exitcode() != 0) fail("mproc child exited with " + std::to_string(p.exitcode().value_or(-999)));
}

/// --rss-probe: a fresh program starts a node (forkserver) and one idle child, then reports
/// "node_kib forkserver_kib idle_child_kib" on stdout.
int rss_probe(int settle_ms) {
  mproc::node_options o;
  o.method = mproc::start_method::forkserver;
  mproc::node node{o};
  auto node_kib = bench::rss_kib(::getpid());  // right after the node started
  auto child = node.spawn(idle);
  std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
  auto child_kib = bench::rss_kib(child.pid());
  auto server_kib = bench::rss_kib(node.forkserver_pid());
  child.kill();
  child.join();
  if (!node_kib || !child_kib || !server_kib) {
    std::cerr << "rss probe: could not read /proc/<pid>/status\n";
    return 1;
  }
  std::cout << *node_kib << ' ' << *server_kib << ' ' << *child_kib << std::endl;
  return 0;
}

// ---- Python multiprocessing -----------------------------------------------------------------

// Real files, not `python3 -c`: spawn and forkserver children re-import __main__ from its path.
const char* python_spawn_join_script = R"(import multiprocessing as mp, sys, time
def noop():
    pass
if __name__ == "__main__":
    method, n = sys.argv[1], int(sys.argv[2])
    ctx = mp.get_context(method)
    p = ctx.Process(target=noop); p.start(); p.join()  # warm-up: starts the fork server
    t = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=noop); p.start(); p.join()
        if p.exitcode != 0: sys.exit("child exit code %r" % p.exitcode)
    print((time.perf_counter() - t) * 1000 / n)
)";

const char* python_rss_script = R"(import multiprocessing as mp, os, sys, time
def idle():
    time.sleep(60)
def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"): return float(line.split()[1])
if __name__ == "__main__":
    ctx = mp.get_context("forkserver")
    p = ctx.Process(target=idle); p.start()   # also starts the fork server
    time.sleep(float(sys.argv[1]) / 1000)
    from multiprocessing import forkserver
    server = forkserver._forkserver._forkserver_pid
    print(rss(os.getpid()), rss(server), rss(p.pid))
    p.terminate(); p.join()
)";

struct python_env {
  mproc::test::temp_dir tmp;
  std::filesystem::path dir = tmp.path();
  std::filesystem::path spawn_join = dir / "spawn_join.py", rss = dir / "idle_rss.py";

  python_env() {
    std::ofstream{spawn_join} << python_spawn_join_script;
    std::ofstream{rss} << python_rss_script;
  }
};

bool have_python() {
  auto r = bench::run_capture({"python3", "-c", "import multiprocessing.forkserver"});
  return r && r->ok();
}


// ---- driver ---------------------------------------------------------------------------------

struct options {
  bool quick = false;
  bool python = true;
  std::string out = "bench-results.json";
  std::string only;  // a figure-name prefix: run just that group ("actor", "cluster", "queue")
};

struct sizes {
  int rounds, raw, mproc_fast, mproc_spawn, py_fork, py_forkserver, py_spawn, settle_ms;
};

int finish(const options& opt, const std::vector<bench::figure>& out);

int run(const options& opt, int argc, char** argv) {
  const sizes n = opt.quick ? sizes{3, 50, 20, 10, 20, 10, 5, 100} : sizes{5, 200, 200, 50, 50, 20, 10, 200};

  std::optional<python_env> py;
  if (opt.python && have_python()) py.emplace();
  else if (opt.python) std::cerr << "mproc_bench: python3 with multiprocessing not found: Python baselines skipped\n";

  std::map<std::string, bench::series> s;
  auto add = [&](const std::string& name, const std::string& unit) { s[name] = bench::series{name, unit, "lower", {}}; };
  for (const char* m : {"forkserver", "spawn", "fork"}) {
    add(std::string{"spawn_join."} + m, "ms");
    add(std::string{"python.mp_"} + m, "ms");
  }
  add("raw.fork_exit_waitpid", "ms");
  add("raw.posix_spawn_true", "ms");
  for (const char* r : {"rss.idle_child_kib", "rss.node_kib", "rss.forkserver_kib", "python.idle_child_kib",
                        "python.parent_kib", "python.forkserver_kib"})
    add(r, "KiB");

  const std::string self = "/proc/self/exe";
  std::vector<bench::figure> queue_out;
  if (opt.only == "actor") {
    mproc::node node{argc, argv};
    return finish(opt, bench::actor_figures(node, self, opt.quick));
  }
  if (opt.only == "cluster") {
    mproc::node node{argc, argv};
    return finish(opt, bench::cluster_figures(node, self, opt.quick));
  }
  if (opt.only == "queue") {
    mproc::node node{argc, argv};
    std::optional<std::filesystem::path> py_dir;
    if (py) py_dir = py->dir;
    return finish(opt, bench::queue_figures(node, opt.quick, py_dir));
  }
  {
    // Baselines run while this node exists (its I/O thread sleeps meanwhile), so each round
    // measures every figure under the same conditions.
    mproc::node_options o;
    o.method = mproc::start_method::forkserver;  // the default; each process picks its own below
    mproc::node node{argc, argv, o};
    const std::pair<mproc::start_method, int> methods[] = {
        {mproc::start_method::forkserver, n.mproc_fast},
        {mproc::start_method::spawn, n.mproc_spawn},
        {mproc::start_method::fork, n.mproc_fast}};
    for (auto [m, count] : methods) mproc_spawn_join(node, m);  // warm-up, as Python's scripts do

    for (int round = 0; round < n.rounds; ++round) {
      std::fprintf(stderr, "round %d/%d\n", round + 1, n.rounds);
      s["raw.fork_exit_waitpid"].samples.push_back(bench::ms_per_call(n.raw, raw_fork_exit_waitpid));
      s["raw.posix_spawn_true"].samples.push_back(bench::ms_per_call(n.raw, raw_posix_spawn_true));
      for (auto [m, count] : methods) {
        std::string name{mproc::to_string(m)};
        s["spawn_join." + name].samples.push_back(
            bench::ms_per_call(count, [&node, m = m] { mproc_spawn_join(node, m); }));
      }
      if (py) {
        const std::pair<const char*, int> py_methods[] = {
            {"fork", n.py_fork}, {"forkserver", n.py_forkserver}, {"spawn", n.py_spawn}};
        for (auto [m, count] : py_methods)
          s[std::string{"python.mp_"} + m].samples.push_back(
              bench::run_numbers({"python3", py->spawn_join.string(), m, std::to_string(count)}, 1)[0]);
        auto kib = bench::run_numbers({"python3", py->rss.string(), std::to_string(n.settle_ms)}, 3);
        s["python.parent_kib"].samples.push_back(kib[0]);
        s["python.forkserver_kib"].samples.push_back(kib[1]);
        s["python.idle_child_kib"].samples.push_back(kib[2]);
      }
      auto kib = bench::run_numbers({self, "--rss-probe", std::to_string(n.settle_ms)}, 3);
      s["rss.node_kib"].samples.push_back(kib[0]);
      s["rss.forkserver_kib"].samples.push_back(kib[1]);
      s["rss.idle_child_kib"].samples.push_back(kib[2]);
    }
    std::optional<std::filesystem::path> py_dir;
    if (py) py_dir = py->dir;
    queue_out = bench::queue_figures(node, opt.quick, py_dir);
    auto pipe_out = bench::pipe_figures(node, opt.quick);
    queue_out.insert(queue_out.end(), pipe_out.begin(), pipe_out.end());
    auto lock_out = bench::lock_figures(node, opt.quick, py_dir);
    queue_out.insert(queue_out.end(), lock_out.begin(), lock_out.end());
    auto pool_out = bench::pool_figures(node, opt.quick, py_dir);
    queue_out.insert(queue_out.end(), pool_out.begin(), pool_out.end());
    // Last: it starts CAF's threads in this process. CAF remoting's baselines run in its rounds.
    auto actor_out = bench::actor_figures(node, self, opt.quick);
    queue_out.insert(queue_out.end(), actor_out.begin(), actor_out.end());
    auto cluster_out = bench::cluster_figures(node, self, opt.quick);
    queue_out.insert(queue_out.end(), cluster_out.begin(), cluster_out.end());
  }

  auto fig = [&](const std::string& name) { return s.at(name).summarize(); };
  const bench::figure raw = fig("raw.fork_exit_waitpid");
  std::vector<bench::figure> out;
  for (const char* m : {"forkserver", "spawn", "fork"}) {
    bench::figure f = fig(std::string{"spawn_join."} + m);
    bench::figure base = fig(std::string{"python.mp_"} + m);
    bench::set_baseline(f, base.runs > 0 ? base : raw);
    f.raw_ratio = bench::ratio_against(f, raw.value);
    out.push_back(f);
  }
  for (auto [mine, theirs] : {std::pair{"rss.idle_child_kib", "python.idle_child_kib"},
                              std::pair{"rss.node_kib", "python.parent_kib"},
                              std::pair{"rss.forkserver_kib", "python.forkserver_kib"}}) {
    bench::figure f = fig(mine);
    bench::set_baseline(f, fig(theirs));
    out.push_back(f);
  }
  out.push_back(raw);
  out.push_back(fig("raw.posix_spawn_true"));
  if (py)
    for (const char* name : {"python.mp_fork", "python.mp_forkserver", "python.mp_spawn", "python.idle_child_kib",
                             "python.parent_kib", "python.forkserver_kib"})
      out.push_back(fig(name));

  out.insert(out.end(), queue_out.begin(), queue_out.end());
  return finish(opt, out);
}

int finish(const options& opt, const std::vector<bench::figure>& out) {
  bench::print_table(stdout, out);
  std::ofstream file{opt.out};
  bench::write_json(file, out);
  file.close();
  if (!file) fail("cannot write " + opt.out);
  std::printf("wrote %s\n", opt.out.c_str());
  return 0;
}

}  // namespace

MPROC_ENTRY(noop);
MPROC_ENTRY(idle);

int main(int argc, char** argv) {
  mproc::maybe_run_child();  // the spawn start method re-executes this binary
  try {
    options opt;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--quick") opt.quick = true;
      else if (a == "--no-python") opt.python = false;
      else if (a == "--out" && i + 1 < argc) opt.out = argv[++i];
      else if (a == "--only" && i + 1 < argc) opt.only = argv[++i];
      else if (a == "--rss-probe" && i + 1 < argc) return rss_probe(std::atoi(argv[++i]));
      else if (a == "--caf-remoting-server" && i + 1 < argc) return bench::caf_remoting_server(std::string{argv[++i]} == "1");
      else if (a == "--cluster-node") return bench::cluster_node_main(argc - i, argv + i);  // the rest are its options
      else {
        std::cerr << "usage: mproc_bench [--quick] [--out FILE] [--no-python] [--only actor|cluster|queue]\n";
        return 2;
      }
    }
    return run(opt, argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mproc_bench: " << e.what() << '\n';
    return 1;
  }
}
