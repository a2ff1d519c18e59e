#include "pipe_bench.hpp"

#include "raw_baselines.hpp"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mproc/mproc.hpp>
#include <stdexcept>
#include <string>

namespace {

using clock_type = std::chrono::steady_clock;
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

double mproc_rtt_us(mproc::node& node, int n) {
  auto [mine, theirs] = mproc::make_pipe<std::int64_t>();
  mproc::process child{node, [end = theirs, other = mine]() mutable {
                         other.close();
                         for (;;) {
                           std::error_code ec;
                           auto v = end.recv(ec);
                           if (ec) return;
                           end.send(*v + 1);
                         }
                       }};
  child.set_start_method(mproc::start_method::fork);
  child.start();
  theirs.close();
  for (int i = 0; i < 100; ++i) mine.send(i), mine.recv();  // warm-up
  auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i) {
    mine.send(i);
    if (mine.recv() != i + 1) fail("pipe echo mismatch");
  }
  double us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / n;
  mine.close();
  child.join();
  if (child.exitcode() != 0) fail("pipe echo child failed");
  return us;
}

}  // namespace

namespace bench {

std::vector<figure> pipe_figures(mproc::node& node, bool quick) {
  const int rounds = quick ? 3 : 5, n = quick ? 2000 : 20000;
  std::map<std::string, series> s;
  for (const char* p : {"pinned", "unpinned"}) {
    s[std::string{"pipe.int64.rtt."} + p] = series{std::string{"pipe.int64.rtt."} + p, "us", "lower", {}};
    s[std::string{"raw.af_unix.rtt."} + p] = series{std::string{"raw.af_unix.rtt."} + p, "us", "lower", {}};
  }
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "pipe round %d/%d\n", round + 1, rounds);
    for (bool pinned : {true, false}) {
      std::string p = pinned ? "pinned" : "unpinned";
      bench::cpu0_placement where{pinned};
      s["pipe.int64.rtt." + p].samples.push_back(mproc_rtt_us(node, n));
      s["raw.af_unix.rtt." + p].samples.push_back(raw_af_unix_rtt_us(n));
    }
  }
  std::vector<figure> out;
  for (const char* p : {"pinned", "unpinned"}) {
    figure f = s.at(std::string{"pipe.int64.rtt."} + p).summarize();
    figure raw = s.at(std::string{"raw.af_unix.rtt."} + p).summarize();
    set_baseline(f, raw);
    out.push_back(f);
    out.push_back(raw);
  }
  return out;
}

}  // namespace bench
