#include "caf_remoting_bench.hpp"

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;
using oneway_atom = caf::atom_constant<caf::atom("oneway")>;
using count_atom = caf::atom_constant<caf::atom("count")>;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("caf_remoting: " + what); }

/// Both ends' configuration: remoting, and a scheduler that does not sleep between polls.
struct tuned_config : caf::actor_system_config {
  tuned_config() {
    load<caf::io::middleman>();
    set("work-stealing.moderate-poll-attempts", std::size_t{0});
  }
};

struct server_state {
  int count = 0;
};

/// Echoes int requests; counts one-way ints; tells the count.
caf::behavior counting_echo(caf::stateful_actor<server_state>* self) {
  return {
      [](int x) { return x; },
      [self](oneway_atom, int) { ++self->state.count; },
      [self](count_atom) { return self->state.count; },
  };
}

/// A server process (this binary, exec'd afresh): its port, and its stdin, which keeps it alive.
class server_process {
 public:
  server_process(const std::string& self, bool pin) : program_{{self, "--caf-remoting-server", pin ? "1" : "0"}} {
    port_ = static_cast<std::uint16_t>(std::atoi(program_.read_line().c_str()));
    if (port_ == 0) fail("the server published no port");
  }

  std::uint16_t port() const noexcept { return port_; }

  /// Ends the server (EOF on its stdin) and reaps it; its raw wait status (0: a clean exit).
  int stop() noexcept { return program_.stop(); }

 private:
  helper_program program_;
  std::uint16_t port_ = 0;
};

/// A client actor system connected to a server: its measurements.
class client {
 public:
  explicit client(std::uint16_t port) : sys_(cfg_), self_(sys_) {
    auto a = sys_.middleman().remote_actor("127.0.0.1", port);
    if (!a) fail("remote_actor: " + sys_.render(a.error()));
    server_ = *a;
  }

  /// µs per request/response of an int, over `n` requests after `n / 10` to warm up.
  double rtt_us(int n) {
    for (int i = 0; i < n / 10; ++i) request(i);
    auto t0 = clock_type::now();
    for (int i = 0; i < n; ++i) request(i);
    return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / n;
  }

  /// msg/s of `n` one-way ints, until the server's count (asked after them, so answered after
  /// them: one sender, one connection) says every one arrived.
  double oneway_per_s(int n) {
    auto t0 = clock_type::now();
    for (int i = 0; i < n; ++i) self_->send(server_, oneway_atom::value, i);
    int counted = -1;
    self_->request(server_, caf::infinite, count_atom::value)
        .receive([&](int c) { counted = c; }, [&](caf::error& e) { fail("count: " + sys_.render(e)); });
    double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    if (counted != n) fail("the server counted " + std::to_string(counted) + " of " + std::to_string(n) + " messages");
    return n / s;
  }

 private:
  void request(int i) {
    self_->request(server_, caf::infinite, i)
        .receive(
            [&](int y) {
              if (y != i) fail("a reply to another request");
            },
            [&](caf::error& e) { fail("request: " + sys_.render(e)); });
  }

  tuned_config cfg_;  // the system keeps a reference: declared first, destroyed last
  caf::actor_system sys_;
  caf::scoped_actor self_;
  caf::actor server_;
};

}  // namespace

remoting_sizes caf_remoting_sizes(bool quick) { return quick ? remoting_sizes{200, 10000} : remoting_sizes{2000, 100000}; }

caf_remoting_sample caf_remoting_round(const std::string& self, bool quick) {
  const auto [requests, oneway] = caf_remoting_sizes(quick);
  caf_remoting_sample r;
  {
    cpu0_placement pinned{true};  // before the client's system, so its threads inherit it
    server_process server{self, true};
    client c{server.port()};
    r.rtt_pinned_us = c.rtt_us(requests);
  }
  server_process server{self, false};
  {
    client c{server.port()};
    r.rtt_unpinned_us = c.rtt_us(requests);
    r.oneway_msg_per_s = c.oneway_per_s(oneway);
  }
  if (server.stop() != 0) fail("the server did not exit cleanly");
  return r;
}

int caf_remoting_server(bool pin) {
  cpu0_placement placement{pin};
  tuned_config cfg;
  caf::actor_system sys{cfg};
  auto server = sys.spawn(counting_echo);
  auto port = sys.middleman().publish(server, 0, "127.0.0.1");
  if (!port) {
    std::fprintf(stderr, "caf_remoting server: publish: %s\n", sys.render(port.error()).c_str());
    caf::anon_send_exit(server, caf::exit_reason::user_shutdown);
    return 1;
  }
  std::printf("%u\n", static_cast<unsigned>(*port));
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  caf::anon_send_exit(server, caf::exit_reason::user_shutdown);
  return 0;
}

}  // namespace bench
