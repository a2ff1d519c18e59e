#include "pool_bench.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <mproc/mproc.hpp>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "primes.hpp"  // examples/

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t identity(std::int64_t x) { return x; }
MPROC_ENTRY(identity);

MPROC_ENTRY(count_primes);

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

std::vector<std::int64_t> range(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

void check_sum(const std::vector<std::int64_t>& got, std::int64_t n) {
  std::int64_t sum = std::accumulate(got.begin(), got.end(), std::int64_t{0});
  if (static_cast<std::int64_t>(got.size()) != n || sum != n * (n - 1) / 2)
    throw std::runtime_error("pool bench: wrong results");
}

double apply_async_rate(mproc::node& node, std::int64_t n) {
  mproc::pool pool{node, 2};
  pool.apply(identity, 0);  // workers up
  auto t0 = clock_type::now();
  std::vector<mproc::async_result<std::int64_t>> rs;
  rs.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) rs.push_back(pool.apply_async(identity, i));
  std::vector<std::int64_t> got;
  got.reserve(rs.size());
  for (auto& r : rs) got.push_back(r.get());
  double s = seconds_since(t0);
  check_sum(got, n);
  return static_cast<double>(n) / s;
}

double map_rate(mproc::node& node, std::int64_t n, std::size_t chunksize) {
  mproc::pool pool{node, 2};
  pool.apply(identity, 0);
  auto inputs = range(n);
  auto t0 = clock_type::now();
  auto got = pool.map(identity, inputs, chunksize);
  double s = seconds_since(t0);
  check_sum(got, n);
  return static_cast<double>(n) / s;
}

double cpu_seconds(mproc::node& node, std::size_t workers, std::int64_t bound) {
  std::vector<std::tuple<std::int64_t, std::int64_t>> pieces;
  for (std::int64_t i = 0; i < 32; ++i) pieces.emplace_back(bound * i / 32, bound * (i + 1) / 32);
  mproc::pool pool{node, workers};
  pool.apply(identity, 0);
  auto t0 = clock_type::now();
  auto counts = pool.starmap(count_primes, pieces, 1);
  double s = seconds_since(t0);
  if (counts.size() != pieces.size()) throw std::runtime_error("pool bench: cpu map lost pieces");
  return s;
}

const char* python_pool_script = R"(import concurrent.futures as cf, multiprocessing as mp, sys, time
def identity(x): return x
if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    if kind == "executor":
        with cf.ProcessPoolExecutor(2) as ex:
            ex.submit(identity, 0).result()
            t = time.perf_counter()
            fs = [ex.submit(identity, i) for i in range(n)]
            total = sum(f.result() for f in fs)
            elapsed = time.perf_counter() - t
    else:
        with mp.Pool(2) as p:
            p.apply(identity, (0,))
            t = time.perf_counter()
            if kind == "apply_async":
                rs = [p.apply_async(identity, (i,)) for i in range(n)]
                total = sum(r.get() for r in rs)
            elif kind == "map_chunk1":
                total = sum(p.map(identity, range(n), chunksize=1))
            else:
                total = sum(p.map(identity, range(n)))
            elapsed = time.perf_counter() - t
    if total != n * (n - 1) // 2: sys.exit("python pool: wrong results")
    print(n / elapsed)
)";

}  // namespace

namespace bench {

std::vector<figure> pool_figures(mproc::node& node, bool quick, const std::optional<std::filesystem::path>& python_dir) {
  const int rounds = quick ? 3 : 5;
  // Python's per-task figures need fewer tasks to be measured; map_auto uses the same n for both.
  const std::int64_t n = quick ? 20000 : 200000, py_n = quick ? 5000 : 20000, auto_n = quick ? 200000 : 2000000;
  const std::int64_t bound = quick ? 1000000 : 3000000;
  auto script = python_script(python_dir, "pool_throughput.py", python_pool_script);
  std::map<std::string, series> s;
  auto add = [&](const std::string& name, const std::string& unit) { s[name] = series{name, unit, "higher", {}}; };
  for (const char* name : {"pool.apply_async.throughput", "pool.map_chunk1.throughput", "pool.map_auto.throughput",
                           "python.pool.apply_async", "python.pool.map_chunk1", "python.pool.map_auto",
                           "python.executor.submit"})
    add(name, "tasks/s");
  add("pool.cpu_speedup", "x");
  add("pool.cpu.1worker_s", "s");
  s["pool.cpu.1worker_s"].better = "lower";
  auto python = [&](const std::string& kind, std::int64_t count) {
    return run_numbers({"python3", script->string(), kind, std::to_string(count)}, 1)[0];
  };
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "pool round %d/%d\n", round + 1, rounds);
    s["pool.apply_async.throughput"].samples.push_back(apply_async_rate(node, n));
    s["pool.map_chunk1.throughput"].samples.push_back(map_rate(node, n, 1));
    s["pool.map_auto.throughput"].samples.push_back(map_rate(node, auto_n, 0));
    double one = cpu_seconds(node, 1, bound), two = cpu_seconds(node, 2, bound);
    s["pool.cpu.1worker_s"].samples.push_back(one);
    s["pool.cpu_speedup"].samples.push_back(one / two);
    if (script) {
      s["python.pool.apply_async"].samples.push_back(python("apply_async", py_n));
      s["python.pool.map_chunk1"].samples.push_back(python("map_chunk1", py_n));
      s["python.pool.map_auto"].samples.push_back(python("map_auto", auto_n));
      s["python.executor.submit"].samples.push_back(python("executor", py_n));
    }
  }
  auto fig = [&](const std::string& name) { return s.at(name).summarize(); };
  std::vector<figure> out;
  for (auto [mine, theirs] : {std::pair{"pool.apply_async.throughput", "python.pool.apply_async"},
                              std::pair{"pool.map_chunk1.throughput", "python.pool.map_chunk1"},
                              std::pair{"pool.map_auto.throughput", "python.pool.map_auto"}}) {
    figure f = fig(mine);
    if (script) set_baseline(f, fig(theirs));
    out.push_back(f);
  }
  out.push_back(fig("pool.cpu_speedup"));
  out.push_back(fig("pool.cpu.1worker_s"));
  if (script)
    for (const char* name : {"python.pool.apply_async", "python.pool.map_chunk1", "python.pool.map_auto",
                             "python.executor.submit"})
      out.push_back(fig(name));
  return out;
}

}  // namespace bench
