// A node program for the cluster tests: mproc-node plus the tests' actor types (cluster_test_actors.hpp).
#include <mproc/cluster_node_main.hpp>

#include "cluster_test_actors.hpp"

int main(int argc, char** argv) { return mproc::cluster::node_main(argc, argv); }
