// A node program for cluster_test.cpp: mproc-node plus the test's actor types.
#include <mproc/cluster_node_main.hpp>
#include <mproc/entry.hpp>

#include "cluster_test_actors.hpp"

namespace cluster_test {
MPROC_ACTOR(calc_impl);
MPROC_ACTOR(probe_impl);
MPROC_ENTRY(exit_with);
MPROC_ENTRY(sleep_for_ms);
MPROC_ENTRY(square_task);
MPROC_ENTRY(slow_pid_task);
MPROC_ENTRY(failing_task);
}  // namespace cluster_test

int main(int argc, char** argv) { return mproc::cluster::node_main(argc, argv); }
