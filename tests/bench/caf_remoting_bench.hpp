// CAF remoting baselines of mproc_bench (issue "actors", item 9): CAF 0.17's own remoting
// (io::middleman: publish / remote_actor, BASP over loopback TCP) between two processes, for
// the actor.* figures to be compared with in the same run:
//
//   caf_remoting.request.rtt.pinned    µs per request/response of an int, both processes (every
//                                      thread of each) on CPU 0
//   caf_remoting.request.rtt.unpinned  the same, placement left to the kernel
//   caf_remoting.oneway.throughput     msg/s of one-way ints from the bench process to the
//                                      server; the server's count must equal what was sent
//
// The server is this binary exec'd afresh (`--caf-remoting-server`), so no CAF thread is ever
// forked; the client's actor_system lives only while it measures. Both run the scheduler with
// work-stealing.moderate-poll-attempts=0 (in-process requests: 6.4 µs instead of 90 µs on this
// VM, DESIGN.md section 4): the strongest CAF we know how to configure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench_support.hpp"

namespace bench {

/// One round of the three CAF remoting figures.
struct caf_remoting_sample {
  double rtt_pinned_us = 0;
  double rtt_unpinned_us = 0;
  double oneway_msg_per_s = 0;
};

/// How many requests and one-way messages a round sends; the cluster figures, which compare
/// with these, send as many.
struct remoting_sizes {
  int requests = 0;
  int oneway = 0;
};
remoting_sizes caf_remoting_sizes(bool quick);

/// Measures one round: a fresh server process per placement. `self` is this binary (the
/// server's image). Throws std::runtime_error when a server fails or a reply is wrong.
caf_remoting_sample caf_remoting_round(const std::string& self, bool quick);

/// The server's side of `--caf-remoting-server <pin 0|1>`: publishes an echo/count actor on an
/// ephemeral loopback port, prints the port, serves until its stdin closes. Returns the exit code.
int caf_remoting_server(bool pin);

}  // namespace bench
