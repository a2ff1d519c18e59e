// mproc/cluster.hpp across a real network link: a node in a network namespace of its own, joined
// over a veth pair, and the link cut under it. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and a
// kernel that lets it create namespaces; elsewhere (a container, an ordinary user) it is skipped
// with the reason.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <mproc/actor_request.hpp>
#include <mproc/cluster.hpp>
#include <mproc/node.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster_test_actors.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
namespace mt = mproc::test;
using namespace cluster_test;

namespace {

struct command_result {
  int status = -1;     // raw wait status; -1 when it did not end in time
  std::string output;  // stdout and stderr together
  bool ok() const { return status == 0; }
};

/// Runs `ip args...` (found on PATH by the shell) and collects what it says.
command_result ip(std::vector<std::string> args) {
  std::vector<std::string> argv{"/bin/sh", "-c", "exec ip \"$@\" 2>&1", "ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  mt::subprocess p{argv};
  command_result r;
  r.output = p.read_rest(10s);
  r.status = p.wait(10s).value_or(-1);
  return r;
}

std::string describe(const std::vector<std::string>& args, const command_result& r) {
  std::string text = "ip";
  for (auto& a : args) text += " " + a;
  auto said = r.output.substr(0, r.output.find_last_not_of(" \n") + 1);
  return text + ": " + (said.empty() ? "exit status " + std::to_string(r.status) : said);
}

constexpr const char* namespace_prefix = "mproc-cut-";

/// What the test run by process `pid` creates: a network namespace, a veth pair (one end in
/// it) and a private /30 of 10.213.0.0/16, all named after the pid, so parallel runs (ctest -j)
/// do not collide.
struct link_names {
  explicit link_names(pid_t pid) {
    auto id = std::to_string(pid);
    ns = namespace_prefix + id;
    outer = "mpc" + id + "o";  // interface names have at most 15 characters
    inner = "mpc" + id + "i";
    auto block = static_cast<unsigned>(pid) % (256 * 64);
    auto prefix = "10.213." + std::to_string(block / 64) + ".";
    outer_address = prefix + std::to_string(block % 64 * 4 + 1);
    inner_address = prefix + std::to_string(block % 64 * 4 + 2);
  }
  std::string ns, outer, inner, outer_address, inner_address;
};

/// Removes the namespace and the veth pair: first the processes still in the namespace (it lives
/// as long as one does), then the pair (the kernel may keep a namespace a while longer for
/// sockets still closing in it, and with it the pair), then the namespace's name.
void remove_link(const link_names& names) {
  std::istringstream inside{ip({"netns", "pids", names.ns}).output};
  for (pid_t pid; inside >> pid;) ::kill(pid, SIGKILL);
  ip({"link", "delete", names.outer});
  ip({"netns", "delete", names.ns});
}

/// Removes what earlier runs left when they were killed before their destructors ran: the links
/// of mproc-cut-<pid> namespaces whose test process is gone.
void remove_stale_links() {
  std::istringstream list{ip({"netns", "list"}).output};
  for (std::string line; std::getline(list, line);) {
    auto name = line.substr(0, line.find(' '));
    if (name.rfind(namespace_prefix, 0) != 0) continue;
    auto pid = std::atoi(name.c_str() + std::strlen(namespace_prefix));
    if (pid > 0 && pid != ::getpid() && !mt::running(pid)) remove_link(link_names{pid});
  }
}

/// A network namespace joined to this one by a veth pair in a private /30 (link_names). The
/// destructor removes them (also after a failed test).
class namespace_link {
 public:
  /// nullopt, with the reason in `why_not`, when namespaces cannot be made here.
  static std::optional<namespace_link> create(std::string& why_not) {
    if (::geteuid() != 0) {
      why_not = "not root";
      return std::nullopt;
    }
    remove_stale_links();
    namespace_link link;
    const auto& n = link.names_;
    auto r = ip({"netns", "add", n.ns});
    if (!r.ok()) {
      why_not = describe({"netns", "add", n.ns}, r);
      return std::nullopt;
    }
    link.created_ = true;
    const std::vector<std::vector<std::string>> setup{
        {"link", "add", n.outer, "type", "veth", "peer", "name", n.inner},
        {"link", "set", n.inner, "netns", n.ns},
        {"addr", "add", n.outer_address + "/30", "dev", n.outer},
        {"link", "set", n.outer, "up"},
        {"-n", n.ns, "addr", "add", n.inner_address + "/30", "dev", n.inner},
        {"-n", n.ns, "link", "set", n.inner, "up"},
        {"-n", n.ns, "link", "set", "lo", "up"},
        {"netns", "exec", n.ns, "true"},  // programs can run inside (it needs to mount /sys there)
    };
    for (auto& args : setup) {
      r = ip(args);
      if (!r.ok()) {
        why_not = describe(args, r);
        return std::nullopt;
      }
    }
    return link;
  }

  namespace_link(namespace_link&& other) noexcept
      : names_(std::move(other.names_)), created_(std::exchange(other.created_, false)) {}
  namespace_link& operator=(namespace_link&&) = delete;
  ~namespace_link() {
    if (created_) remove_link(names_);
  }

  const std::string& name() const { return names_.ns; }
  const std::string& inner_address() const { return names_.inner_address; }

  /// Takes this side of the veth down: from now on nothing crosses the link, in either
  /// direction, and neither end is told (no FIN, no RST), as when a cable is pulled.
  void cut() const {
    const std::vector<std::string> args{"link", "set", names_.outer, "down"};
    auto r = ip(args);
    if (!r.ok()) throw std::runtime_error(describe(args, r));
  }

 private:
  namespace_link() : names_(::getpid()) {}

  link_names names_;
  bool created_ = false;
};

std::filesystem::path write_private_cookie(const mt::temp_dir& dir, const std::string& cookie) {
  auto path = dir / "cookie";
  std::ofstream{path} << cookie << "\n";
  ::chmod(path.c_str(), 0600);
  return path;
}

TEST(cluster_netns, a_cut_link_is_reported_as_node_lost_within_two_seconds) {
  mt::temp_dir dir;
  mproc::node node;
  mt::guard watchdog{60s};
  std::string why_not;
  auto link = namespace_link::create(why_not);
  if (!link) GTEST_SKIP() << "network namespaces not permitted here: " << why_not;

  // The other node runs inside the namespace; `ip netns exec` execs it, so the pid is its own.
  const std::string cookie = "the-secret";
  mt::subprocess b{{"/bin/sh", "-c", "exec ip netns exec \"$@\"", "ip", link->name(), MPROC_CLUSTER_NODE_HELPER,
                    "--listen", link->inner_address() + ":0", "--cookie-file",
                    write_private_cookie(dir, cookie).string()}};
  watchdog.add(b.pid());
  auto line = b.read_line(20s);
  const std::string prefix = "mproc-node listening on " + link->inner_address() + ":";
  ASSERT_TRUE(line && line->rfind(prefix, 0) == 0) << line.value_or("EOF");
  auto port = static_cast<std::uint16_t>(std::stoi(line->substr(prefix.size())));

  auto remote = mproc::cluster::join(node, link->inner_address(), port, {.cookie = cookie});
  auto calc = remote.spawn<calc_actor>("calc_impl", 10);
  EXPECT_EQ(mproc::request<int>(calc, 5s, add_atom::value, 1, 2), 13);
  EXPECT_EQ(mproc::request<int>(remote.spawn("probe_impl", 0), 5s, pid_atom::value), b.pid());

  auto probe = remote.spawn("probe_impl", 0);
  // Shared with the callback, which may outlive this scope when the test fails.
  auto down = std::make_shared<std::promise<std::pair<caf::error, mt::steady::time_point>>>();
  remote.on_down([down](const caf::error& why) { down->set_value({why, mt::steady::now()}); });
  auto pending = std::async(std::launch::async, [&] {
    std::error_code ec;
    mproc::request<int>(ec, probe, 10s, hang_atom::value);  // never answered: only the cut ends it
    return std::pair{ec, mt::steady::now()};
  });
  std::this_thread::sleep_for(100ms);  // the request is on its way
  ASSERT_EQ(pending.wait_for(0s), std::future_status::timeout);

  auto cut_at = mt::steady::now();
  link->cut();
  auto reported = down->get_future();
  ASSERT_EQ(reported.wait_for(5s), std::future_status::ready) << "on_down did not fire";
  auto [why, down_at] = reported.get();
  EXPECT_EQ(mproc::to_error_code(why), mproc::errc::node_lost) << mproc::describe(why);
  EXPECT_LT(down_at - cut_at, 2s);
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready) << "the pending request was not answered";
  auto [ec, failed_at] = pending.get();
  EXPECT_EQ(ec, mproc::errc::node_lost) << ec.message();
  EXPECT_LT(failed_at - cut_at, 2s);
  std::printf("cut link reported after %.0f ms\n",
              std::chrono::duration<double, std::milli>(down_at - cut_at).count());
}

}  // namespace
