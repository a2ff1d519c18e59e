#include "lock_bench.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <mproc/mproc.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using clock_type = std::chrono::steady_clock;
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

void take_turns(mproc::value<std::int64_t> counter, mproc::queue<int> go, int n) {
  go.get();
  auto& l = counter.get_lock();
  for (int i = 0; i < n; ++i) {
    l.acquire();
    ++*counter.get_obj();
    l.release();
  }
}
MPROC_ENTRY(take_turns);

double uncontended_ns(int n) {
  auto l = mproc::lock::create();
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    l.acquire();
    l.release();
  }
  return std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() / n;
}

double contended_ns(mproc::node& node, int n) {
  auto counter = mproc::value<std::int64_t>::create(0);
  auto go = node.make_queue<int>();
  auto a = node.spawn(take_turns, counter, go, n);
  auto b = node.spawn(take_turns, counter, go, n);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = clock_type::now();
  go.put(1);
  go.put(1);
  a.join();
  b.join();
  double ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() / (2.0 * n);
  if (a.exitcode() != 0 || b.exitcode() != 0 || counter.get() != 2LL * n) fail("lock.contended: wrong total");
  return ns;
}

const char* python_lock_script = R"(import multiprocessing as mp, sys, time
def turns(lock, counter, go, n):
    go.wait()
    for _ in range(n):
        lock.acquire(); counter.value += 1; lock.release()
if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    lock = mp.Lock()
    if kind == "uncontended":
        t = time.perf_counter()
        for _ in range(n):
            lock.acquire(); lock.release()
        print((time.perf_counter() - t) * 1e9 / n)
    else:
        counter, go = mp.Value("q", 0, lock=False), mp.Event()
        ps = [mp.Process(target=turns, args=(lock, counter, go, n)) for _ in range(2)]
        for p in ps: p.start()
        time.sleep(0.05)
        t = time.perf_counter(); go.set()
        for p in ps: p.join()
        elapsed = time.perf_counter() - t
        if counter.value != 2 * n: sys.exit("python lock: wrong total")
        print(elapsed * 1e9 / (2 * n))
)";

double python_lock(const std::filesystem::path& script, const std::string& kind, int n) {
  return bench::run_numbers({"python3", script.string(), kind, std::to_string(n)}, 1)[0];
}

}  // namespace

namespace bench {

std::vector<figure> lock_figures(mproc::node& node, bool quick, const std::optional<std::filesystem::path>& python_dir) {
  const int rounds = quick ? 3 : 5, n_solo = quick ? 200000 : 2000000, n_pair = quick ? 20000 : 200000,
            py_solo = quick ? 20000 : 200000, py_pair = quick ? 5000 : 50000;
  auto script = python_script(python_dir, "lock_turns.py", python_lock_script);
  std::map<std::string, series> s;
  for (const char* name : {"lock.uncontended", "lock.contended.2proc", "python.mp_lock.uncontended",
                           "python.mp_lock.contended.2proc"})
    s[name] = series{name, "ns", "lower", {}};
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "lock round %d/%d\n", round + 1, rounds);
    s["lock.uncontended"].samples.push_back(uncontended_ns(n_solo));
    s["lock.contended.2proc"].samples.push_back(contended_ns(node, n_pair));
    if (script) {
      s["python.mp_lock.uncontended"].samples.push_back(python_lock(*script, "uncontended", py_solo));
      s["python.mp_lock.contended.2proc"].samples.push_back(python_lock(*script, "contended", py_pair));
    }
  }
  std::vector<figure> out;
  for (auto [mine, theirs] : {std::pair{"lock.uncontended", "python.mp_lock.uncontended"},
                              std::pair{"lock.contended.2proc", "python.mp_lock.contended.2proc"}}) {
    figure f = s.at(mine).summarize();
    set_baseline(f, s.at(theirs).summarize());
    out.push_back(f);
  }
  if (script)
    for (const char* name : {"python.mp_lock.uncontended", "python.mp_lock.contended.2proc"})
      out.push_back(s.at(name).summarize());
  return out;
}

}  // namespace bench
