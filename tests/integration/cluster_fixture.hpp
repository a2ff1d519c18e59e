// The cluster tests' fixture: a node of its own (cluster_node_helper) on a loopback port, joined
// with a cookie file.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <mproc/cluster.hpp>
#include <mproc/node.hpp>
#include <stdexcept>
#include <string>

#include "test_support.hpp"

namespace cluster_test {

using namespace std::chrono_literals;
namespace mt = mproc::test;

inline std::filesystem::path write_cookie(const mt::temp_dir& dir, const std::string& name, const std::string& cookie,
                                          mode_t mode = 0600) {
  auto path = dir / name;
  std::ofstream{path} << cookie << "\n";
  ::chmod(path.c_str(), mode);
  return path;
}

/// A node of its own (cluster_node_helper, i.e. mproc-node with the test's actors), listening on
/// a free loopback port. The destructor SIGKILLs it.
struct other_node {
  mt::subprocess program;
  std::uint16_t port = 0;

  other_node(const std::filesystem::path& cookie_file, mt::guard& watchdog)
      : program{{MPROC_CLUSTER_NODE_HELPER, "--listen", "127.0.0.1:0", "--cookie-file", cookie_file.string()}} {
    watchdog.add(program.pid());
    auto line = program.read_line(20s);
    const std::string prefix = "mproc-node listening on 127.0.0.1:";
    if (!line || line->rfind(prefix, 0) != 0) throw std::runtime_error("no listening line: " + line.value_or("EOF"));
    port = static_cast<std::uint16_t>(std::stoi(line->substr(prefix.size())));
  }
};

class cluster : public testing::Test {
 protected:
  mt::guard watchdog{60s};
  mt::temp_dir dir;
  std::filesystem::path cookie_file = write_cookie(dir, "cookie", "the-secret");
  mproc::node node;

  mproc::cluster::remote_node join(const other_node& b, const std::string& cookie = "the-secret") {
    return mproc::cluster::join(node, "127.0.0.1", b.port, {.cookie = cookie});
  }
};

}  // namespace cluster_test
