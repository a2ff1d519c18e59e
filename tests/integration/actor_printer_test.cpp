// The printer (mproc/actors/printer.hpp) with senders in other processes: every line reaches the
// fd whole, in one write, and each sender's lines keep their order.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <map>
#include <mproc/actor_host.hpp>
#include <mproc/actor_request.hpp>
#include <mproc/actors/printer.hpp>
#include <mproc/node.hpp>
#include <string>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace ma = mproc::actors;
namespace mt = mproc::test;

namespace {

using go_atom = caf::atom_constant<caf::atom("go")>;
constexpr int lines_per_sender = 200;

/// Prints `n` numbered lines, each in three pieces (two prints and a println), as fast as it can.
caf::behavior chatty_sender(caf::event_based_actor* self, caf::actor printer, int id) {
  return {[self, printer, id](go_atom, int n) {
    for (int i = 0; i < n; ++i) {
      ma::print(self, printer, "sender ", id, ' ');
      ma::print(self, printer, "line ", i, ' ');
      ma::println(self, printer, std::string(64, static_cast<char>('a' + id)));
    }
    return n;
  }};
}
MPROC_ACTOR(chatty_sender);

TEST(actor_printer, lines_from_actors_in_two_processes_arrive_whole_and_in_order) {
  mproc::node node;
  mt::guard watchdog{30s};
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);  // one record per write
  auto printer = ma::spawn_printer(mproc::actor_system(), fds[0]);
  auto a = mproc::spawn_host(node), b = mproc::spawn_host(node);
  watchdog.add(a.pid());
  watchdog.add(b.pid());
  auto sa = a.spawn("chatty_sender", printer, 0), sb = b.spawn("chatty_sender", printer, 1);
  caf::anon_send(sa, go_atom::value, lines_per_sender);
  caf::anon_send(sb, go_atom::value, lines_per_sender);

  std::map<int, int> next_line;  // per sender
  std::string buf(1 << 16, '\0');
  for (int got = 0; got < 2 * lines_per_sender; ++got) {
    pollfd p{fds[1], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << "after " << got << " lines";
    auto n = ::recv(fds[1], buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    std::string record(buf.data(), static_cast<std::size_t>(n));
    int id = -1, line = -1;
    ASSERT_EQ(std::sscanf(record.c_str(), "sender %d line %d ", &id, &line), 2) << record;
    ASSERT_TRUE(id == 0 || id == 1) << record;
    std::string tail = std::string(64, static_cast<char>('a' + id)) + "\n";
    ASSERT_TRUE(record.size() > tail.size() && record.compare(record.size() - tail.size(), tail.size(), tail) == 0)
        << "torn line: " << record;
    EXPECT_EQ(line, next_line[id]++) << "sender " << id << " out of order";
  }
  caf::scoped_actor self{mproc::actor_system()};
  self->monitor(printer);
  caf::anon_send_exit(printer, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {}, caf::after(10s) >> [] {});
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
