// Process start+join cost and idle memory, beside their baselines measured in the same run:
// raw fork+_exit+waitpid, posix_spawn of `true`, and Python's multiprocessing start methods.
// Writes the JSON array of DESIGN.md section 7 (--out FILE) and prints a table.
#include <mproc/mproc.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

void noop() {}
void idle() { std::this_thread::sleep_for(std::chrono::seconds(30)); }

struct figure {
  std::string name, unit, better;
  double value = 0, min = 0, max = 0;
  int runs = 0;
  std::optional<std::pair<std::string, double>> baseline;
  std::optional<double> raw_ratio;  // against raw fork, for spawn_join figures
};

figure make_figure(const std::string& name, const std::string& unit) {
  figure f;
  f.name = name;
  f.unit = unit;
  f.better = "lower";
  return f;
}

/// Median of per-round means; each round runs `per_round` iterations of `one`.
figure measure(const std::string& name, int rounds, int per_round, const std::function<void()>& one) {
  std::vector<double> means;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < per_round; ++i) one();
    std::chrono::duration<double, std::milli> d = std::chrono::steady_clock::now() - t0;
    means.push_back(d.count() / per_round);
  }
  std::sort(means.begin(), means.end());
  figure f = make_figure(name, "ms");
  f.value = means[means.size() / 2];
  f.min = means.front();
  f.max = means.back();
  f.runs = rounds;
  return f;
}

figure from_samples(const std::string& name, const std::string& unit, std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  figure f = make_figure(name, unit);
  if (xs.empty()) return f;  // runs == 0: not measured
  f.value = xs[xs.size() / 2];
  f.min = xs.front();
  f.max = xs.back();
  f.runs = static_cast<int>(xs.size());
  return f;
}

double rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6);
  return 0;
}

void raw_fork() {
  pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  int st;
  ::waitpid(p, &st, 0);
}

void raw_posix_spawn_true() {
  pid_t p;
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  if (::posix_spawnp(&p, "true", nullptr, nullptr, argv, environ) != 0) return;
  int st;
  ::waitpid(p, &st, 0);
}

/// Runs a python3 script and returns the numbers it prints, one per line. The script is a real
/// file: forkserver and spawn children re-import __main__, which `python3 -c` cannot offer.
std::vector<double> python(const std::string& code) {
  char path[] = "/tmp/mproc-bench-XXXXXX.py";
  int fd = ::mkstemps(path, 3);
  if (fd < 0) return {};
  std::ofstream{path} << code;
  ::close(fd);
  std::string cmd = std::string{"python3 "} + path + " 2>/dev/null";
  std::vector<double> out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char line[128];
  while (std::fgets(line, sizeof line, p) != nullptr) out.push_back(std::atof(line));
  ::pclose(p);
  ::unlink(path);
  return out;
}

bool have_python() { return std::system("python3 -c 'import multiprocessing' >/dev/null 2>&1") == 0; }

std::string python_spawn_join(const std::string& method, int rounds, int per_round) {
  std::ostringstream s;
  s << "import multiprocessing as mp, time\n"
       "def noop(): pass\n"
       "if __name__ == \"__main__\":\n"
       "    ctx = mp.get_context(\""
    << method << "\")\n"
    << "    ctx.Process(target=noop).start()\n"  // warm-up (starts the forkserver)
       "    for r in range("
    << rounds << "):\n"
    << "        t = time.perf_counter()\n"
       "        for i in range("
    << per_round << "):\n"
    << "            p = ctx.Process(target=noop); p.start(); p.join()\n"
       "        print((time.perf_counter() - t) * 1000 / "
    << per_round << ")\n";
  return s.str();
}

const char* python_idle_rss =
    "import multiprocessing as mp, time\n"
    "def idle(): time.sleep(30)\n"
    "def rss(pid):\n"
    "    for l in open(\"/proc/%d/status\" % pid):\n"
    "        if l.startswith(\"VmRSS:\"): return float(l.split()[1])\n"
    "if __name__ == \"__main__\":\n"
    "    ctx = mp.get_context(\"forkserver\")\n"
    "    for r in range(3):\n"
    "        p = ctx.Process(target=idle); p.start(); time.sleep(0.2)\n"
    "        print(rss(p.pid)); p.terminate(); p.join()\n";

void set_baseline(figure& f, const figure& base) {
  f.baseline = std::make_pair(base.name, base.value);
}

double ratio(const figure& f) {
  if (!f.baseline || f.value == 0) return 0;
  return f.better == "higher" ? f.value / f.baseline->second : f.baseline->second / f.value;
}

std::string json(const std::vector<figure>& fs) {
  std::ostringstream o;
  o.precision(6);
  o << "[\n";
  for (std::size_t i = 0; i < fs.size(); ++i) {
    const auto& f = fs[i];
    o << "  {\"name\": \"" << f.name << "\", \"value\": " << f.value << ", \"unit\": \"" << f.unit
      << "\", \"better\": \"" << f.better << "\", ";
    if (f.baseline)
      o << "\"baseline\": {\"name\": \"" << f.baseline->first << "\", \"value\": " << f.baseline->second
        << "}, \"ratio\": " << ratio(f) << ", ";
    else
      o << "\"baseline\": null, \"ratio\": null, ";
    if (f.raw_ratio) o << "\"raw_ratio\": " << *f.raw_ratio << ", ";
    o << "\"runs\": " << f.runs << ", \"min\": " << f.min << ", \"max\": " << f.max << "}"
      << (i + 1 < fs.size() ? "," : "") << "\n";
  }
  o << "]\n";
  return o.str();
}

void table(const std::vector<figure>& fs) {
  std::printf("%-28s %12s %-6s %-26s %10s %7s  %s\n", "figure", "median", "unit", "baseline", "base", "ratio",
              "min-max (runs)");
  for (const auto& f : fs) {
    std::printf("%-28s %12.4g %-6s %-26s %10s %7s  %.4g-%.4g (%d)\n", f.name.c_str(), f.value, f.unit.c_str(),
                f.baseline ? f.baseline->first.c_str() : "-",
                f.baseline ? std::to_string(f.baseline->second).substr(0, 8).c_str() : "-",
                f.baseline ? std::to_string(ratio(f)).substr(0, 6).c_str() : "-", f.min, f.max, f.runs);
  }
}

}  // namespace

MPROC_ENTRY(noop);
MPROC_ENTRY(idle);

int main(int argc, char** argv) {
  mproc::maybe_run_child();
  bool quick = false;
  std::string out = "bench-results.json";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
  }
  const int rounds = quick ? 3 : 5;
  const int n_fast = quick ? 20 : 200, n_spawn = quick ? 5 : 50;
  std::vector<figure> figures;

  figure raw = measure("raw.fork_exit_waitpid", rounds, n_fast, raw_fork);
  figure raw_spawn = measure("raw.posix_spawn_true", rounds, n_fast, raw_posix_spawn_true);

  std::optional<figure> py_fork, py_fs, py_spawn, py_rss;
  if (have_python()) {
    int pr = quick ? 2 : 5;
    py_fork = from_samples("python.mp_fork", "ms", python(python_spawn_join("fork", pr, quick ? 10 : 50)));
    py_fs = from_samples("python.mp_forkserver", "ms", python(python_spawn_join("forkserver", pr, quick ? 5 : 20)));
    py_spawn = from_samples("python.mp_spawn", "ms", python(python_spawn_join("spawn", pr, quick ? 2 : 10)));
    py_rss = from_samples("python.idle_child_kib", "KiB", python(python_idle_rss));
  } else {
    std::cerr << "python3 not found: Python baselines skipped\n";
  }

  {
    mproc::node node{argc, argv};
    auto run = [&](mproc::start_method m, int n, const std::optional<figure>& py) {
      figure f = measure(std::string{"spawn_join."} + std::string{mproc::to_string(m)}, rounds, n, [&] {
        mproc::process p{node, noop};
        p.set_start_method(m);
        p.start();
        p.join();
      });
      set_baseline(f, py && py->runs > 0 ? *py : raw);
      f.raw_ratio = raw.value / f.value;
      figures.push_back(f);
    };
    run(mproc::start_method::forkserver, n_fast, py_fs);
    run(mproc::start_method::spawn, n_spawn, py_spawn);
    run(mproc::start_method::fork, n_fast, py_fork);

    std::vector<double> child_rss;
    for (int r = 0; r < 3; ++r) {
      auto p = node.spawn(idle);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      child_rss.push_back(rss_kib(p.pid()));
      p.kill();
      p.join();
    }
    figure c = from_samples("rss.idle_child_kib", "KiB", child_rss);
    if (py_rss && py_rss->runs > 0) set_baseline(c, *py_rss);
    figures.push_back(c);
    figures.push_back(from_samples("rss.node_kib", "KiB", {rss_kib(::getpid())}));
    if (node.forkserver_pid() != 0)
      figures.push_back(from_samples("rss.forkserver_kib", "KiB", {rss_kib(node.forkserver_pid())}));
  }
  figures.push_back(raw);
  figures.push_back(raw_spawn);
  for (auto* py : {&py_fork, &py_fs, &py_spawn, &py_rss})
    if (*py && (*py)->runs > 0) figures.push_back(**py);

  table(figures);
  std::ofstream{out} << json(figures);
  std::cout << "wrote " << out << std::endl;
}
