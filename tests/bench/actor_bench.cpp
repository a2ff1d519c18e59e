#include "actor_bench.hpp"

#include <unistd.h>

#include <caf/all.hpp>
#include <chrono>
#include <map>
#include <mproc/actor_host.hpp>
#include <mproc/actor_request.hpp>
#include <stdexcept>
#include <string>

#include "caf_remoting_bench.hpp"
#include "raw_baselines.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using count_atom = caf::atom_constant<caf::atom("count")>;
[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

caf::behavior bench_echo(caf::event_based_actor*, int) {
  return {[](int x) { return x + 1; }};
}
MPROC_ACTOR(bench_echo);

caf::behavior bench_counter(caf::stateful_actor<std::int64_t>* self, int) {
  return {[self](int) { ++self->state; }, [self](count_atom) { return self->state; }};
}
MPROC_ACTOR(bench_counter);

}  // namespace

namespace bench {

double actor_request_rtt_us(const caf::actor& echo, int n) {
  caf::scoped_actor self{mproc::actor_system()};
  auto once = [&](int i) {
    int got = -1;
    self->request(echo, caf::infinite, i).receive([&](int r) { got = r; }, [&](caf::error& e) { fail(mproc::describe(e)); });
    if (got != i + 1) fail("actor echo mismatch");
  };
  for (int i = 0; i < 200; ++i) once(i);
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) once(i);
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / n;
}

double actor_oneway_msgs_per_s(const caf::actor& counter, int n, std::int64_t& expected) {
  caf::scoped_actor self{mproc::actor_system()};
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) self->send(counter, i);
  // One sender to one actor keeps its order: the count answers after every int was handled.
  auto total = mproc::request<std::int64_t>(counter, std::chrono::seconds(60), count_atom::value);
  double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  expected += n;
  if (total != expected) fail("actor.oneway: " + std::to_string(total) + " counted, " + std::to_string(expected) + " sent");
  return n / s;
}

std::vector<figure> actor_figures(mproc::node& node, const std::string& self, bool quick) {
  const int rounds = quick ? 3 : 5, n_rtt = quick ? 2000 : 20000, n_oneway = quick ? 200000 : 2000000;
  auto host = mproc::spawn_host(node);
  auto echo = host.spawn("bench_echo", 0);
  auto counter = host.spawn("bench_counter", 0);
  std::map<std::string, series> s;
  for (const char* p : {"pinned", "unpinned"}) {
    s[std::string{"actor.request.rtt."} + p] = series{std::string{"actor.request.rtt."} + p, "us", "lower", {}};
    s[std::string{"raw.af_unix.rtt."} + p] = series{std::string{"raw.af_unix.rtt."} + p, "us", "lower", {}};
  }
  s["actor.oneway.throughput"] = series{"actor.oneway.throughput", "msg/s", "higher", {}};
  for (const char* p : {"pinned", "unpinned"})
    s[std::string{"caf_remoting.request.rtt."} + p] = series{std::string{"caf_remoting.request.rtt."} + p, "us", "lower", {}};
  s["caf_remoting.oneway.throughput"] = series{"caf_remoting.oneway.throughput", "msg/s", "higher", {}};
  std::int64_t expected = 0;
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "actor round %d/%d\n", round + 1, rounds);
    for (bool pinned : {true, false}) {
      std::string p = pinned ? "pinned" : "unpinned";
      place_all_threads(::getpid(), pinned);
      place_all_threads(host.pid(), pinned);
      s["actor.request.rtt." + p].samples.push_back(actor_request_rtt_us(echo, n_rtt));
      cpu0_placement where{pinned};
      s["raw.af_unix.rtt." + p].samples.push_back(raw_af_unix_rtt_us(n_rtt));
    }
    s["actor.oneway.throughput"].samples.push_back(actor_oneway_msgs_per_s(counter, n_oneway, expected));
    auto caf = caf_remoting_round(self, quick);
    s["caf_remoting.request.rtt.pinned"].samples.push_back(caf.rtt_pinned_us);
    s["caf_remoting.request.rtt.unpinned"].samples.push_back(caf.rtt_unpinned_us);
    s["caf_remoting.oneway.throughput"].samples.push_back(caf.oneway_msg_per_s);
  }
  place_all_threads(::getpid(), false);
  std::vector<figure> out;
  for (const char* p : {"pinned", "unpinned"}) {
    figure f = s.at(std::string{"actor.request.rtt."} + p).summarize();
    figure raw = s.at(std::string{"raw.af_unix.rtt."} + p).summarize();
    raw.name = std::string{"raw.af_unix.rtt."} + p + ".actor_run";
    set_baseline(f, raw);
    out.push_back(f);
    out.push_back(raw);
    out.push_back(s.at(std::string{"caf_remoting.request.rtt."} + p).summarize());
  }
  figure oneway = s.at("actor.oneway.throughput").summarize();
  figure caf_oneway = s.at("caf_remoting.oneway.throughput").summarize();
  set_baseline(oneway, caf_oneway);
  out.push_back(oneway);
  out.push_back(caf_oneway);
  return out;
}

}  // namespace bench
