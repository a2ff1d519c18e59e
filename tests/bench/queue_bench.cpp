#include "queue_bench.hpp"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <mproc/mproc.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using clock_type = std::chrono::steady_clock;
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

struct record {
  std::int64_t id = 0;
  std::string name;
  std::array<double, 8> values{};
};
template <class F>
void inspect(F& f, record& r) {
  f(r.id, r.name, r.values);
}

using bytes = std::vector<std::byte>;
constexpr std::size_t bulk_size = std::size_t{64} << 20;

// ---- child processes ----------------------------------------------------------------------

void produce_ints(mproc::queue<std::int64_t> q, mproc::queue<int> go, std::int64_t from, std::int64_t to) {
  go.get();
  for (auto i = from; i < to; ++i) q.put(i);
}
MPROC_ENTRY(produce_ints);

void consume_ints(mproc::queue<std::int64_t> q, mproc::queue<std::int64_t> result, std::int64_t n) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += q.get();
  result.put(sum);
}
MPROC_ENTRY(consume_ints);

void produce_records(mproc::queue<record> q, mproc::queue<int> go, std::int64_t n) {
  go.get();
  record r{0, "abcdefghijklmnop", {1, 2, 3, 4, 5, 6, 7, 8}};
  for (std::int64_t i = 0; i < n; ++i) {
    r.id = i;
    q.put(r);
  }
}
MPROC_ENTRY(produce_records);

void consume_records(mproc::queue<record> q, mproc::queue<std::int64_t> result, std::int64_t n) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    auto r = q.get();
    sum += r.id + static_cast<std::int64_t>(r.name.size()) + static_cast<std::int64_t>(r.values[7]);
  }
  result.put(sum);
}
MPROC_ENTRY(consume_records);

/// Takes values until the queue is closed; reports which it saw (a bitmap) and how many twice.
void consume_bitmap(mproc::queue<std::int64_t> q, mproc::queue<std::vector<std::uint64_t>> result, std::int64_t total) {
  std::vector<std::uint64_t> seen(static_cast<std::size_t>(total + 63) / 64 + 1);
  std::uint64_t dups = 0;
  for (;;) {
    std::error_code ec;
    auto v = q.get(ec);
    if (ec == mproc::errc::closed) break;
    if (ec || *v < 0 || *v >= total) std::_Exit(3);
    auto i = static_cast<std::size_t>(*v);
    if (seen[i / 64] & (std::uint64_t{1} << (i % 64))) ++dups;
    seen[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  seen.back() = dups;  // the last word carries the duplicate count
  result.put(seen);
}
MPROC_ENTRY(consume_bitmap);

/// By value: every message is a std::vector<std::byte> of 64 MiB, put by one process and
/// taken by another, which checks every 4 KiB page of it: the producer stamps each page with
/// the message's number (and the rest of the page is 7), so a page that was not delivered
/// afresh fails the check. The consumer takes each message into the vector it keeps
/// (get_into), or, for the `fresh` figure, as a new vector (get). Both first pass `warm_up`
/// messages before the clock starts, as a long-running pair would have: the producer's pool of
/// reusable bodies (README, "Large messages") is made then; a fresh 64 MiB memfd costs ~40 ms.
constexpr int warm_up = 3;
constexpr std::size_t page_words = 4096 / sizeof(std::uint64_t);
constexpr std::uint64_t sevens = 0x0707070707070707ULL;

void stamp_bulk(bytes& b, std::uint64_t number) {
  auto* words = reinterpret_cast<std::uint64_t*>(b.data());
  for (std::size_t w = 0; w < bulk_size / 8; w += page_words) words[w] = number;
}

bool bulk_intact(const bytes& b, std::uint64_t number) {
  if (b.size() != bulk_size) return false;
  const auto* words = reinterpret_cast<const std::uint64_t*>(b.data());
  std::uint64_t diff = 0;
  for (std::size_t w = 0; w < bulk_size / 8; w += page_words) diff |= (words[w] ^ number) | (words[w + page_words - 1] ^ sevens);
  return diff == 0;
}

void produce_bulk(mproc::queue<bytes> q, mproc::queue<int> go, int n) {
  bytes b(bulk_size, std::byte{7});
  for (int i = 0; i < warm_up + n; ++i) {
    if (i == warm_up) go.get();
    stamp_bulk(b, static_cast<std::uint64_t>(i));
    q.put(b);
  }
}
MPROC_ENTRY(produce_bulk);

void consume_bulk(mproc::queue<bytes> q, mproc::queue<int> ready, mproc::queue<std::int64_t> result, int n, bool fresh) {
  bytes b;
  std::int64_t total = 0;
  for (int i = 0; i < warm_up + n; ++i) {
    if (i == warm_up) ready.put(1);
    if (fresh) b = q.get();
    else q.get_into(b);
    if (!bulk_intact(b, static_cast<std::uint64_t>(i))) std::_Exit(4);
    if (i >= warm_up) total += static_cast<std::int64_t>(b.size());
  }
  result.put(total);
}
MPROC_ENTRY(consume_bulk);

/// Zero copy: 64 MiB blocks of shared memory travel by handle. Producer and consumer both get
/// the pool of blocks as arguments (each maps them once, as a buffer pool would be set up); a
/// block arriving through a queue then reuses the receiver's mapping. The producer writes every
/// byte of a block (its round number), the consumer reads every byte back, and blocks return to
/// the producer through `returns`.
using block_pool = std::vector<mproc::shared_memory>;
constexpr int pool_blocks = 3;

void produce_blocks(mproc::queue<mproc::shared_memory> q, mproc::queue_reader<mproc::shared_memory> returns,
                    mproc::queue<int> go, block_pool pool, int n) {
  for (auto& b : pool) std::memset(b.data(), 0, bulk_size);  // mapped in before the clock starts
  go.get();
  for (int i = 0; i < n; ++i) {
    auto block = i < pool_blocks ? pool[static_cast<std::size_t>(i)] : returns.get();
    std::memset(block.data(), i & 0xff, bulk_size);
    q.put(block);
  }
}
MPROC_ENTRY(produce_blocks);

void consume_blocks(mproc::queue_reader<mproc::shared_memory> q, mproc::queue<mproc::shared_memory> returns,
                    mproc::queue<std::int64_t> result, block_pool pool, int n) {
  for (auto& b : pool) {  // fault the mappings in before the clock starts, as the producer does
    volatile const std::byte* p = static_cast<const std::byte*>(b.data());
    for (std::size_t at = 0; at < bulk_size; at += 4096) (void)p[at];
  }
  std::int64_t total = 0;
  for (int i = 0; i < n; ++i) {
    auto block = q.get();
    const auto* words = static_cast<const std::uint64_t*>(block.data());
    const std::uint64_t expect = 0x0101010101010101ULL * static_cast<std::uint64_t>(i & 0xff);
    std::uint64_t diff = 0;
    for (std::size_t w = 0; w < bulk_size / 8; ++w) diff |= words[w] ^ expect;
    if (block.size() < bulk_size || diff != 0) std::_Exit(4);
    total += static_cast<std::int64_t>(bulk_size);
    returns.put(block);
  }
  result.put(total);
}
MPROC_ENTRY(consume_blocks);

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void join_ok(mproc::process& p) {
  p.join();
  if (p.exitcode() != 0) fail("queue bench child exited with " + std::to_string(p.exitcode().value_or(-1)));
}

// ---- mproc measurements -------------------------------------------------------------------

/// Seconds from "go" until the consumer reports its result (stored in `total`), once both are
/// up (`settle`); joins both.
double timed_run(mproc::process& consumer, mproc::process& producer, mproc::queue<int>& go,
                 mproc::queue<std::int64_t>& result, std::chrono::milliseconds settle, std::int64_t& total) {
  std::this_thread::sleep_for(settle);
  auto t0 = clock_type::now();
  go.put(1);
  total = result.get(std::chrono::seconds(120));
  double s = seconds_since(t0);
  join_ok(producer);
  join_ok(consumer);
  return s;
}

/// msg/s from "go" until the consumer has taken all n.
template <class Value, class Produce, class Consume>
double one_to_one(mproc::node& node, Produce produce, Consume consume, std::int64_t n) {
  auto q = node.make_queue<Value>();
  auto go = node.make_queue<int>();
  auto result = node.make_queue<std::int64_t>();
  auto c = node.spawn(consume, q, result, n);
  auto p = node.spawn(produce, q, go, n);
  std::int64_t ignored = 0;
  return static_cast<double>(n) / timed_run(c, p, go, result, std::chrono::milliseconds(50), ignored);
}

void produce_ints_n(mproc::queue<std::int64_t> q, mproc::queue<int> go, std::int64_t n) { produce_ints(q, go, 0, n); }
MPROC_ENTRY(produce_ints_n);

double mpmc(mproc::node& node, std::int64_t total) {
  constexpr int producers = 4, consumers = 4;
  auto q = node.make_queue<std::int64_t>();
  auto go = node.make_queue<int>();
  auto result = node.make_queue<std::vector<std::uint64_t>>();
  std::vector<mproc::process> cs, ps;
  for (int i = 0; i < consumers; ++i) cs.push_back(node.spawn(consume_bitmap, q, result, total));
  for (int i = 0; i < producers; ++i)
    ps.push_back(node.spawn(produce_ints, q, go, total * i / producers, total * (i + 1) / producers));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = clock_type::now();
  for (int i = 0; i < producers; ++i) go.put(1);
  for (auto& p : ps) join_ok(p);
  q.close();  // consumers drain, then stop
  std::vector<std::uint64_t> all(static_cast<std::size_t>(total + 63) / 64 + 1);
  std::uint64_t overlap = 0;
  for (int i = 0; i < consumers; ++i) {
    auto bits = result.get(std::chrono::seconds(120));
    overlap += bits.back();
    for (std::size_t w = 0; w + 1 < bits.size(); ++w) {
      overlap += static_cast<std::uint64_t>(__builtin_popcountll(all[w] & bits[w]));
      all[w] |= bits[w];
    }
  }
  double s = seconds_since(t0);
  for (auto& c : cs) join_ok(c);
  std::int64_t seen = 0;
  for (std::size_t w = 0; w + 1 < all.size(); ++w) seen += __builtin_popcountll(all[w]);
  if (overlap != 0 || seen != total)
    fail("queue.mpmc4x4: exactly-once violated: " + std::to_string(seen) + " of " + std::to_string(total) +
         " distinct values, " + std::to_string(overlap) + " duplicates");
  return static_cast<double>(total) / s;
}

double bulk(mproc::node& node, int n, bool fresh) {
  auto q = node.make_queue<bytes>();
  auto go = node.make_queue<int>();
  auto ready = node.make_queue<int>();
  auto result = node.make_queue<std::int64_t>();
  auto c = node.spawn(consume_bulk, q, ready, result, n, fresh);
  auto p = node.spawn(produce_bulk, q, go, n);
  ready.get(std::chrono::seconds(120));  // the warm-up messages went through
  std::int64_t total = 0;
  double s = timed_run(c, p, go, result, std::chrono::milliseconds(0), total);
  return static_cast<double>(total) / s / 1e9;
}

double bulk_blocks(mproc::node& node, int n) {
  auto q = node.make_queue<mproc::shared_memory>();
  auto returns = node.make_queue<mproc::shared_memory>();
  auto go = node.make_queue<int>();
  auto result = node.make_queue<std::int64_t>();
  block_pool pool;
  for (int i = 0; i < pool_blocks; ++i) pool.push_back(mproc::shared_memory::create(bulk_size));
  auto c = node.spawn(consume_blocks, q.reader(), returns, result, pool, n);
  auto p = node.spawn(produce_blocks, q, returns.reader(), go, pool, n);
  std::int64_t total = 0;
  double s = timed_run(c, p, go, result, std::chrono::milliseconds(500), total);  // both mapped the pool
  return static_cast<double>(total) / s / 1e9;
}

/// One memcpy of 64 MiB between two buffers already mapped in: the copy a by-value message
/// cannot avoid, and what a zero-copy one should come near.
double raw_memcpy(int n) {
  std::vector<char> from(bulk_size, 7), to(bulk_size, 0);
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    from[static_cast<std::size_t>(i)] = static_cast<char>(i);
    std::memcpy(to.data(), from.data(), bulk_size);
  }
  double s = seconds_since(t0);
  if (to[0] != from[0]) fail("memcpy baseline");
  return static_cast<double>(bulk_size) * n / s / 1e9;
}

// ---- raw baselines (forked children that only make syscalls, then _exit) ------------------

template <class Child, class Parent>
double raw_pair(Child child, Parent parent) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
  auto t0 = clock_type::now();
  pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    ::close(sv[0]);
    child(sv[1]);
    ::_exit(0);
  }
  ::close(sv[1]);
  parent(sv[0]);
  double s = seconds_since(t0);
  ::close(sv[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("raw baseline child failed");
  return s;
}

void read_exactly(int fd, std::size_t total, std::size_t chunk) {
  std::vector<char> buf(chunk);
  std::size_t got = 0;
  while (got < total) {
    ssize_t r = ::read(fd, buf.data(), std::min(chunk, total - got));
    if (r <= 0) fail("raw baseline: short read");
    got += static_cast<std::size_t>(r);
  }
}

double raw_write_per_msg(std::int64_t n) {
  double s = raw_pair(
      [n](int fd) {
        for (std::int64_t i = 0; i < n; ++i)
          if (::write(fd, &i, sizeof i) != sizeof i) ::_exit(1);
      },
      [n](int fd) { read_exactly(fd, static_cast<std::size_t>(n) * 8, 64 * 1024); });
  return static_cast<double>(n) / s;
}

double raw_bulk(int n) {
  const std::size_t total = bulk_size * static_cast<std::size_t>(n), chunk = 1 << 20;
  double s = raw_pair(
      [&](int fd) {
        std::vector<char> buf(chunk, 7);
        for (std::size_t sent = 0; sent < total;) {
          ssize_t w = ::write(fd, buf.data(), std::min(chunk, total - sent));
          if (w <= 0) ::_exit(1);
          sent += static_cast<std::size_t>(w);
        }
      },
      [&](int fd) { read_exactly(fd, total, chunk); });
  return static_cast<double>(total) / s / 1e9;
}

// ---- Python multiprocessing ---------------------------------------------------------------

const char* python_queue_script = R"(import multiprocessing as mp, sys, time
def produce(q, go, lo, hi, kind):
    go.wait()
    if kind == "struct":
        name, values = "abcdefghijklmnop", (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
        for i in range(lo, hi): q.put((i, name, values))
    else:
        for i in range(lo, hi): q.put(i)
def consume(q, result):
    n = 0
    while q.get() is not None: n += 1
    result.put(n)
if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    producers = consumers = 4 if kind == "mpmc" else 1
    q, result, go = mp.Queue(), mp.Queue(), mp.Event()
    ps = [mp.Process(target=produce, args=(q, go, n * i // producers, n * (i + 1) // producers, kind)) for i in range(producers)]
    cs = [mp.Process(target=consume, args=(q, result)) for _ in range(consumers)]
    for p in ps + cs: p.start()
    time.sleep(0.05)
    t = time.perf_counter(); go.set()
    for p in ps: p.join()
    for _ in cs: q.put(None)
    total = sum(result.get() for _ in cs)
    elapsed = time.perf_counter() - t
    for c in cs: c.join()
    if total != n: sys.exit("python queue lost messages")
    print(n / elapsed)
)";

double python_queue(const std::filesystem::path& script, const std::string& kind, std::int64_t n) {
  return bench::run_numbers({"python3", script.string(), kind, std::to_string(n)}, 1)[0];
}

}  // namespace

namespace bench {

std::vector<figure> queue_figures(mproc::node& node, bool quick, const std::optional<std::filesystem::path>& python_dir) {
  struct sizes {
    int rounds;
    std::int64_t ints, records, mpmc, py;
    int bulk;
  };
  const sizes n = quick ? sizes{3, 200000, 100000, 200000, 20000, 2} : sizes{5, 4000000, 2000000, 4000000, 200000, 8};

  auto script = python_script(python_dir, "queue_throughput.py", python_queue_script);
  std::map<std::string, series> s;
  auto add = [&](const std::string& name, const std::string& unit) { s[name] = series{name, unit, "higher", {}}; };
  add("queue.int64.throughput", "msg/s");
  add("queue.struct.throughput", "msg/s");
  add("queue.mpmc4x4.throughput", "msg/s");
  add("queue.bulk64mib.throughput", "GB/s");
  add("queue.bulk64mib.fresh.throughput", "GB/s");
  add("queue.bulk64mib.shared_memory.throughput", "GB/s");
  add("raw.memcpy64mib", "GB/s");
  add("raw.af_unix.write_per_msg", "msg/s");
  add("raw.af_unix.bulk", "GB/s");
  add("python.mp_queue.int", "msg/s");
  add("python.mp_queue.struct", "msg/s");
  add("python.mp_queue.mpmc4x4", "msg/s");

  one_to_one<std::int64_t>(node, produce_ints_n, consume_ints, 1000);  // warm-up
  for (int round = 0; round < n.rounds; ++round) {
    std::fprintf(stderr, "queue round %d/%d\n", round + 1, n.rounds);
    s["queue.int64.throughput"].samples.push_back(one_to_one<std::int64_t>(node, produce_ints_n, consume_ints, n.ints));
    s["raw.af_unix.write_per_msg"].samples.push_back(raw_write_per_msg(n.ints / 4));
    s["queue.struct.throughput"].samples.push_back(one_to_one<record>(node, produce_records, consume_records, n.records));
    s["queue.mpmc4x4.throughput"].samples.push_back(mpmc(node, n.mpmc));
    s["queue.bulk64mib.throughput"].samples.push_back(bulk(node, n.bulk, false));
    s["queue.bulk64mib.fresh.throughput"].samples.push_back(bulk(node, n.bulk, true));
    s["raw.af_unix.bulk"].samples.push_back(raw_bulk(n.bulk));
    s["queue.bulk64mib.shared_memory.throughput"].samples.push_back(bulk_blocks(node, n.bulk * 2));
    s["raw.memcpy64mib"].samples.push_back(raw_memcpy(n.bulk * 2));
    if (script) {
      s["python.mp_queue.int"].samples.push_back(python_queue(*script, "int", n.py));
      s["python.mp_queue.struct"].samples.push_back(python_queue(*script, "struct", n.py));
      s["python.mp_queue.mpmc4x4"].samples.push_back(python_queue(*script, "mpmc", n.py));
    }
  }

  auto fig = [&](const std::string& name) { return s.at(name).summarize(); };
  const figure raw = fig("raw.af_unix.write_per_msg");
  std::vector<figure> out;
  for (auto [mine, theirs] : {std::pair{"queue.int64.throughput", "python.mp_queue.int"},
                              std::pair{"queue.struct.throughput", "python.mp_queue.struct"},
                              std::pair{"queue.mpmc4x4.throughput", "python.mp_queue.mpmc4x4"}}) {
    figure f = fig(mine);
    set_baseline(f, fig(theirs));
    f.raw_ratio = ratio_against(f, raw.value);
    out.push_back(f);
  }
  for (const char* name : {"queue.bulk64mib.throughput", "queue.bulk64mib.fresh.throughput"}) {
    figure b = fig(name);
    set_baseline(b, fig("raw.af_unix.bulk"));
    out.push_back(b);
  }
  figure zero_copy = fig("queue.bulk64mib.shared_memory.throughput");
  set_baseline(zero_copy, fig("raw.memcpy64mib"));
  out.push_back(zero_copy);
  out.push_back(raw);
  out.push_back(fig("raw.af_unix.bulk"));
  out.push_back(fig("raw.memcpy64mib"));
  if (script)
    for (const char* name : {"python.mp_queue.int", "python.mp_queue.struct", "python.mp_queue.mpmc4x4"})
      out.push_back(fig(name));
  return out;
}

}  // namespace bench
